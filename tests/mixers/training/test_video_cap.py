"""Qwen2-VL with ``cap_pixels_per_frame``: a video cut into chunk groups is resized as the whole video is.

The cap is a share of ``max_video_tokens`` per frame, so it depends on the frame count: the plan
counts it for the whole video, while the processor, given one chunk group's frames, would cap for
those few frames only (a larger size, more tokens than planned).
"""

from __future__ import annotations

import pyarrow.parquet as pq
import torch

from fusionforge.mixers.training.dataset import PackedDataset
from fusionforge.mixers.training.media import decode_video
from fusionforge.mixers.training.packed import RecordReader


def test_chunk_groups_of_a_capped_video_match_the_plan_and_the_whole_video(packed_qwen_capped, vlm_tokenizer):
    dataset = PackedDataset(packed_qwen_capped, vlm_tokenizer)
    grids = torch.cat([s["video_grid_thw"] for s in dataset if s["video_grid_thw"] is not None])
    assert len(grids) >= 2  # the video was cut into chunk groups
    plan = pq.read_table(dataset.run.plan_path).to_pylist()
    segment, span = next((g, m) for r in plan for g in r["segments"] for m in g["media"] if m["kind"] == "video")
    item = RecordReader(dataset.run.config.input).record(segment["partition"], segment["row"])["media"][0]
    frames = decode_video(item, (span["width"], span["height"]), None, int(item["n_frames"]))
    whole = dataset._ready()[1].processors.video(videos=[frames], cap_pixels_per_frame=True, return_tensors="pt")
    frames_t, height, width = whole["video_grid_thw"][0].tolist()
    assert {(h, w) for _, h, w in grids.tolist()} == {(height, width)}  # every group at the whole video's size
    assert int(grids[:, 0].sum()) == frames_t
