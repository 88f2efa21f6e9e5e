import hashlib
import itertools

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.core.stage import ScoringStage, StageSpec
from fusionforge.pipelines.shard import ShardConfig, run_shard
from fusionforge.pipelines.transform import ManifestSource, TransformConfig, run_transform, shard_runs


class ShortCaption(ScoringStage):
    """Drops records whose text has fewer than ``min_words`` words."""

    name = "test_short_text_v1"

    def __init__(self, min_words: int = 20) -> None:
        self.min_words = min_words

    def score(self, batch):
        return {"words": pa.array([len((t or "").split()) for t in batch.column(S.TEXT).to_pylist()], pa.int64())}

    def decide(self, scores):
        return ["too_few_words" if n < self.min_words else None for n in scores["words"].to_pylist()]


@pytest.fixture(scope="module")
def sharded(sample_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("t") / "shards"
    corpus = {k: sample_corpus[k] for k in ("web", "photos", "docs", "clips")}
    run_shard(
        ShardConfig(
            inputs=tuple(f"{k}={v}" for k, v in corpus.items()),
            output=str(out),
            shard_count=15,
            run=RunSettings(executor="local"),
        )
    )
    return out


def _run(sharded, out, executor="local"):
    cfg = TransformConfig(input=str(sharded), output=str(out), run=RunSettings(executor=executor))
    return run_transform(cfg, "filter", [StageSpec(ShortCaption, {"min_words": 20})], {"min_words": 20})


def test_transform_keeps_sharding_accounts_for_every_row_and_copies_media(sharded, tmp_path):
    report = _run(sharded, tmp_path / "f")
    before = pq.read_table(sharded / "manifest.parquet")
    after = pq.read_table(tmp_path / "f" / "manifest.parquet")
    assert report["inputs"] == before.num_rows == report["kept"] + report["dropped"]
    assert report["reasons"] == {"test_short_text_v1:too_few_words": report["dropped"]} and report["dropped"] > 0
    assert all(len(t.split()) >= 20 for t in after.column(S.TEXT).to_pylist())
    rejected = pq.read_table(tmp_path / "f" / "rejected")
    assert rejected.num_rows == report["dropped"]
    assert all(w < 20 for w in rejected.column("test_short_text_v1__words").to_pylist())
    for row in after.to_pylist():
        for item in row[S.MEDIA]:
            with open(tmp_path / "f" / item["uri"], "rb") as handle:
                handle.seek(item["offset"])
                assert hashlib.sha256(handle.read(item["size"])).hexdigest() == item["sha256"]


def test_manifest_source_partitions_follow_input_shards(sharded):
    source = ManifestSource(sharded)
    counts = [sum(t.num_rows for t in source.read(p)) for p in source.partitions()]
    assert len(counts) == len(source.shards) > 3
    assert sum(counts) == pq.read_metadata(sharded / "manifest.parquet").num_rows
    with pytest.raises(ConfigError, match="manifest"):
        ManifestSource(sharded / "shards")


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 7, 1000])
def test_shard_runs_match_a_row_by_row_grouping_across_batch_and_row_group_edges(tmp_path, batch_rows):
    values = ["a"] * 5 + ["b"] * 3 + ["c"] + ["d"] * 4 + ["e"] * 2
    pq.write_table(pa.table({"shard": values, "x": range(len(values))}), tmp_path / "m.parquet", row_group_size=4)
    expected_shards = [shard for shard, _ in itertools.groupby(values)]
    starts = [0] + [i for i in range(1, len(values)) if values[i] != values[i - 1]]
    expected_ranges = list(zip(starts, [*starts[1:], len(values)]))
    assert shard_runs(tmp_path / "m.parquet", batch_rows) == (expected_shards, expected_ranges)


def test_manifest_source_refuses_a_shard_whose_rows_are_split_or_missing(tmp_path):
    pq.write_table(pa.table({"shard": ["a", "a", "b", "a"]}), tmp_path / "manifest.parquet")
    with pytest.raises(ConfigError, match="not contiguous"):
        ManifestSource(tmp_path)
    pq.write_table(pa.table({"shard": ["a", None, "b"]}), tmp_path / "manifest.parquet")
    with pytest.raises(ConfigError, match="1 rows without a shard"):
        ManifestSource(tmp_path)


@pytest.mark.ray
def test_transform_on_ray_matches_in_process(ray_session, sharded, tmp_path):
    _run(sharded, tmp_path / "local")
    _run(sharded, tmp_path / "ray", executor="ray")
    for name in sorted(p.name for p in (tmp_path / "local" / "shards").glob("*.tar")):
        assert (tmp_path / "ray" / "shards" / name).read_bytes() == (tmp_path / "local" / "shards" / name).read_bytes()
    assert pq.read_table(tmp_path / "ray" / "manifest.parquet").equals(
        pq.read_table(tmp_path / "local" / "manifest.parquet")
    )
