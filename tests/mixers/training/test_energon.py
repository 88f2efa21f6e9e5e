"""``pack --materialize --energon``: the real megatron-energon loads the packed shards, lints and describes them.

The metadata comes from energon's own preparation code; energon's loader (``get_train_dataset`` +
``get_loader``) yields the materialized content unchanged, and with ``PackedTaskEncoder`` exactly the
tensors ``PackedDataset`` builds; the ``energon lint`` and ``energon info`` commands pass.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import webdataset as wds
from click.testing import CliRunner
from megatron.energon import DefaultTaskEncoder, WorkerConfig, get_loader, get_train_dataset

from fusionforge.cli.main import cli
from fusionforge.mixers.training.collate import collate_varlen
from fusionforge.mixers.training.dataset import PackedDataset
from fusionforge.mixers.training.energon import PackedSequenceSample, PackedTaskEncoder

# The ``energon`` command's own entry point, run by this interpreter: the script pip writes beside it is
# missing where the package comes from another environment (a venv that shares site-packages).
ENERGON = [sys.executable, "-c", "import sys; from megatron.energon.cli.main import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def energon_pack(tiny_shards, vlm_tokenizer, tmp_path_factory):
    """Qwen2-VL, video chunk groups, 3 sequences a shard (several shards), through the pack command."""
    out = tmp_path_factory.mktemp("energon") / "packed"
    args = ["pack", str(tiny_shards), "-o", str(out), "--seq-len", "160", "--window", "2", "--executor", "local"]
    args += ["--vision-preset", "qwen2-vl", "--tokenizer", str(vlm_tokenizer), "--video-group-tokens", "12"]
    args += ["--preset-set", "video_min_pixels=3136", "--preset-set", "video_max_pixels=6272"]
    args += ["--materialize", "--samples-per-shard", "3", "--energon"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def loader_samples(dataset, count):
    """The first ``count`` items energon's loader yields (a training dataset repeats without end)."""
    out = []
    for item in get_loader(dataset):
        out.append(item)
        if len(out) == count:
            return out
    raise AssertionError(f"the loader ended after {len(out)} items")


def train_dataset(packed, task_encoder, batch_size):
    return get_train_dataset(
        packed / "packed",
        worker_config=WorkerConfig(rank=0, world_size=1, num_workers=0),
        batch_size=batch_size,
        shuffle_buffer_size=None,
        max_samples_per_sequence=None,
        task_encoder=task_encoder,
    )


def test_energon_metadata_is_written_by_energons_preparation(energon_pack):
    meta = energon_pack / "packed" / ".nv-meta"
    report = json.loads((energon_pack / "report.json").read_text())
    shards = sorted(p.name for p in (energon_pack / "packed").glob("*.tar"))
    assert len(shards) == report["materialized"]["shards"] > 1
    info = json.loads((meta / ".info.json").read_text())
    assert info["shard_counts"] == {name: 3 for name in shards[:-1]} | {shards[-1]: info["shard_counts"][shards[-1]]}
    assert sum(info["shard_counts"].values()) == report["sequences"]
    assert (meta / "index.sqlite").is_file() and all((energon_pack / "packed" / f"{s}.idx").is_file() for s in shards)
    assert report["energon"]["sample_type"] == "fusionforge.mixers.training.energon.PackedSequenceSample"
    assert "PackedSequenceSample" in (meta / "dataset.yaml").read_text()


def test_energons_loader_yields_the_materialized_samples(energon_pack):
    plan = pq.read_table(energon_pack / "plan.parquet", columns=["sequence_id"]).column(0).to_pylist()
    shards = sorted(str(p) for p in (energon_pack / "packed").glob("*.tar"))
    written = {json.loads(s["json"])["sequence_id"]: s for s in wds.WebDataset(shards, shardshuffle=False)}
    samples = loader_samples(train_dataset(energon_pack, DefaultTaskEncoder(), None), 2 * len(plan))
    seen = set()
    for sample in samples:
        assert isinstance(sample, PackedSequenceSample)
        member = written[sample.header["sequence_id"]]
        assert sample.header == json.loads(member["json"])
        assert np.array_equal(sample.input_ids, np.load(io.BytesIO(member["input_ids.npy"])))
        assert np.array_equal(sample.roles, np.load(io.BytesIO(member["roles.npy"])))
        parts = [span["member"].split(".", 1)[1] for span in sample.header["media"]]
        assert sample.media == {part: member[part] for part in parts}
        seen.add(sample.header["sequence_id"])
    assert seen == set(plan)  # every sequence, in energon's own order


def test_energon_with_the_task_encoder_gives_packed_datasets_tensors(energon_pack, vlm_tokenizer):
    ours = PackedDataset(energon_pack, vlm_tokenizer, source="input")
    total = len(pq.read_table(energon_pack / "plan.parquet", columns=["sequence_id"]))
    encoder = PackedTaskEncoder(energon_pack, vlm_tokenizer)
    batches = loader_samples(train_dataset(energon_pack, encoder, 1), total * 2)
    seen, kinds = set(), set()
    for batch in batches:
        (sequence_id,) = batch["sequence_ids"]
        expected = collate_varlen([ours.sequence(sequence_id)])
        assert batch.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(batch[key], value), (sequence_id, key)
            else:
                assert batch[key] == value, (sequence_id, key)
        kinds |= {k for k in ("pixel_values", "pixel_values_videos") if batch[k] is not None}
        seen.add(sequence_id)
    assert len(seen) == total and kinds == {"pixel_values", "pixel_values_videos"}


def energon(*args):
    return subprocess.run([*ENERGON, *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow  # two runs of the energon command, each importing torch and energon
def test_energon_lint_and_info_pass(energon_pack):
    lint = energon("lint", str(energon_pack / "packed"))  # train, val and test: the last two are empty
    assert lint.returncode == 0, lint.stdout + lint.stderr
    info = energon("info", str(energon_pack / "packed"))
    assert info.returncode == 0, info.stdout + info.stderr
    report = json.loads((energon_pack / "report.json").read_text())
    assert f"({report['sequences']:,} samples" in info.stdout
    assert "fusionforge.mixers.training.energon.PackedSequenceSample" in info.stdout


def test_energon_needs_materialize(tiny_shards, vlm_tokenizer, tmp_path):
    args = ["pack", str(tiny_shards), "-o", str(tmp_path / "p"), "--tokenizer", str(vlm_tokenizer), "--energon"]
    result = CliRunner().invoke(cli, [*args, "--executor", "local"])
    assert result.exit_code != 0 and "add --materialize" in result.output
