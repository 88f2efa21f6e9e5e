"""The loader reads the materialized shards when a pack wrote them: the same tensors as from the input shards."""

from __future__ import annotations

import io
import shutil
import tarfile

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from fusionforge.mixers.training.dataset import PackedDataset
from fusionforge.pipelines.core.errors import ConfigError


def assert_same_samples(ours, theirs):
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == b[key].dtype and torch.equal(value, b[key]), (a["sequence_id"], key)
            else:
                assert value == b[key], (a["sequence_id"], key)


@pytest.mark.parametrize("which", ["packed_qwen", "packed_qwen_cut", "packed_kimi", "packed_qwen_capped"])
def test_the_materialized_shards_give_the_same_tensors_as_the_input_shards(which, request, vlm_tokenizer):
    packed = request.getfixturevalue(which)
    auto = PackedDataset(packed, vlm_tokenizer)
    assert auto.source == "materialized"
    materialized = list(auto)
    assert_same_samples(materialized, list(PackedDataset(packed, vlm_tokenizer, source="input")))
    plan = pq.read_table(packed / "plan.parquet", columns=["sequence_id"]).column(0).to_pylist()
    assert [s["sequence_id"] for s in materialized] == plan
    assert any(s["pixel_values"] is not None for s in materialized)
    assert any(s["pixel_values_videos"] is not None for s in materialized)


def moved_input(packed, folder):
    """A copy of a pack output whose input folder is gone: only its materialized shards hold the data."""
    shutil.copytree(packed, folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["input"] = str(folder / "no-such-input")
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def test_reading_the_materialized_shards_needs_no_input(packed_qwen, vlm_tokenizer, tmp_path):
    copy = moved_input(packed_qwen, tmp_path / "copy")
    assert_same_samples(list(PackedDataset(copy, vlm_tokenizer)), list(PackedDataset(packed_qwen, vlm_tokenizer)))
    with pytest.raises(ConfigError, match="not found|does not exist|no manifest|not a"):
        list(PackedDataset(copy, vlm_tokenizer, source="input"))


def test_shards_without_roles_are_read_from_the_input_and_refused_when_asked_for(packed_qwen, vlm_tokenizer, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(packed_qwen, copy)
    for shard in sorted((copy / "packed").glob("*.tar")):  # as pack wrote them before roles were stored
        with tarfile.open(shard) as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar if not m.name.endswith(".roles.npy")]
        with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tar:
            for member, data in members:
                tar.addfile(member, io.BytesIO(data))
    assert PackedDataset(copy, vlm_tokenizer).source == "input"
    with pytest.raises(ConfigError, match="no materialized shards with token roles"):
        PackedDataset(copy, vlm_tokenizer, source="materialized")
    with pytest.raises(ConfigError, match="source must be one of"):
        PackedDataset(copy, vlm_tokenizer, source="tar")
