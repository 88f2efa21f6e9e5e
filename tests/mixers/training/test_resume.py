"""Ranks split every planned window; micro-batches do not depend on the worker count; a stopped run resumes
with exactly the batches an uninterrupted run yields (tensors compared bitwise), through torchdata's
``StatefulDataLoader`` with the same workers, or through a global position with other workers."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from fusionforge.mixers.training.dataset import PackedDataset
from fusionforge.mixers.training.schedule import global_position
from fusionforge.pipelines.core.errors import ConfigError

KEYS = ("input_ids", "labels", "position_ids", "cu_seqlens", "pixel_values", "image_grid_thw", "pixel_values_videos")


def assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a["sequence_ids"] == b["sequence_ids"]
        for key in KEYS:
            assert (a[key] is None) == (b[key] is None), key
            if a[key] is not None:
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def batches(dataset, workers, loader=DataLoader):
    return list(loader(dataset, batch_size=None, num_workers=workers))


@pytest.fixture(scope="module")
def uninterrupted(packed_qwen, vlm_tokenizer):
    return batches(PackedDataset(packed_qwen, vlm_tokenizer, batch_size=2), 0)


def test_ranks_split_every_window_and_take_the_same_number_of_steps(packed_qwen, vlm_tokenizer):
    plan = pq.read_table(packed_qwen / "plan.parquet", columns=["sequence_id", "window"]).to_pylist()
    window_of = {r["sequence_id"]: r["window"] for r in plan}
    streams = [
        [b["sequence_id"] for b in PackedDataset(packed_qwen, vlm_tokenizer, rank=r, world_size=2)] for r in range(2)
    ]
    assert len(streams[0]) == len(streams[1])
    for a, b in zip(*streams):
        assert window_of[a] == window_of[b]  # both ranks are in the same window at every step
        assert a != b or sum(w == window_of[a] for w in window_of.values()) % 2  # a repeat only tops up an odd window
    assert set(streams[0]) | set(streams[1]) == set(window_of)


def test_micro_batches_are_the_same_with_any_number_of_workers(packed_qwen, vlm_tokenizer, uninterrupted):
    assert [b["sequence_ids"] for b in uninterrupted][:2] == [[0, 1], [2, 3]]
    assert_same_batches(batches(PackedDataset(packed_qwen, vlm_tokenizer, batch_size=2), 2), uninterrupted)


def test_stateful_dataloader_resumes_exactly_with_the_same_or_other_workers(packed_qwen, vlm_tokenizer, uninterrupted):
    stop = 2
    loader = StatefulDataLoader(PackedDataset(packed_qwen, vlm_tokenizer, batch_size=2), batch_size=None, num_workers=2)
    iterator = iter(loader)
    seen = [next(iterator) for _ in range(stop)]
    state = loader.state_dict()
    del iterator
    again = StatefulDataLoader(PackedDataset(packed_qwen, vlm_tokenizer, batch_size=2), batch_size=None, num_workers=2)
    again.load_state_dict(state)
    assert_same_batches(seen + list(again), uninterrupted)
    for workers in (0, 1):  # another worker count: through the global position
        dataset = PackedDataset(packed_qwen, vlm_tokenizer, batch_size=2)
        dataset.load_state_dict(global_position(state))
        assert_same_batches(seen + batches(dataset, workers), uninterrupted)


def test_a_state_for_other_settings_or_other_workers_is_refused(packed_qwen, vlm_tokenizer):
    dataset = PackedDataset(packed_qwen, vlm_tokenizer, batch_size=2)
    with pytest.raises(ConfigError, match="batch_size=4"):
        dataset.load_state_dict({**dataset.state_dict(), "batch_size": 4})
    with pytest.raises(ConfigError, match=r"rank=0 \(now 1\)"):
        saved = PackedDataset(packed_qwen, vlm_tokenizer, world_size=2).state_dict()
        PackedDataset(packed_qwen, vlm_tokenizer, rank=1, world_size=2).load_state_dict(saved)
    dataset.load_state_dict({**dataset.state_dict(), "next": 1, "workers": 2})  # one worker's own position
    with pytest.raises(ConfigError, match="global_position"):
        batches(dataset, 0)


def test_an_iteration_after_the_end_is_a_new_pass(packed_qwen, vlm_tokenizer, uninterrupted):
    dataset = PackedDataset(packed_qwen, vlm_tokenizer, batch_size=2)
    dataset.load_state_dict({"next": len(uninterrupted)})  # where a finished pass leaves the state
    assert_same_batches(batches(dataset, 0), uninterrupted)
