"""A real pretraining chain for the audit tests: the sample corpus through shard, dedupe and pack (in-process)."""

from __future__ import annotations

import pytest

from fusionforge.pipelines.core.settings import RunSettings


@pytest.fixture(scope="session")
def real_chain(sample_corpus, tmp_path_factory) -> dict[str, str]:
    """Folders of a real ``shard`` -> ``dedupe`` -> ``pack`` run (256-token sequences at 10% vision)."""
    from fusionforge.mixers.packing.job import PackConfig, run_pack
    from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    root = tmp_path_factory.mktemp("real_chain")
    paths = {step: str(root / step) for step in ("shard", "dedupe", "pack")}
    run_shard(
        ShardConfig(
            inputs=tuple(f"{k}={v}" for k, v in sample_corpus.items()),
            output=paths["shard"],
            shard_count=4,
            run=RunSettings(executor="local"),
        )
    )
    run_dedupe(
        DedupeConfig(input=paths["shard"], output=paths["dedupe"], shard_count=4, run=RunSettings(executor="local"))
    )
    run_pack(
        PackConfig(
            input=paths["dedupe"],
            output=paths["pack"],
            seq_len=256,
            vision_ratio=0.1,
            window=8,
            run=RunSettings(executor="local"),
        )
    )
    return paths
