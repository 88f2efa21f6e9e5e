"""Frame sampling into 4-frame chunks, the temporal unit of Kimi K2.5's MoonViT-3D.

Frames are sampled at ``fps`` (lowered to the video's own rate, and so that at most ``max_frames``
come out) and grouped into chunks of ``chunk_size`` consecutive frames; the encoder averages each
chunk over time, so a video costs ceil(frames / 4) frames' worth of vision tokens. A trailing chunk
with fewer frames is kept and flagged (``partial_chunk``). Columns (the contract with the packer):
``fps`` (float64, the rate used), ``n_frames`` (int64), ``chunk_sizes`` (list<int32>), plus
``partial_chunk`` (bool) and ``frame_times`` (list<float64>, seconds from the start).

With ``store_frames`` the sampled frames are also stored: JPEG media items of kind ``"frame"``
appended after the video (``{key}.001.jpg``, ... in the shard), at most ``max_side`` pixels on the
longer side, so a trainer reads decoded-ready frames instead of seeking in the video. It is off by
default: a token counter that takes every non-image media item for a video would count each frame
as one more video (count a video once, from ``n_frames``; skip ``"frame"`` items).
"""

from __future__ import annotations

import hashlib
import io
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from PIL import Image

from fusionforge.filters.media import video_url
from fusionforge.filters.video.common import live_video_rows, video_facts
from fusionforge.filters.video.decode import decode_frames
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import POSITIVE
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, Stage, add_drop_reasons, add_errors, set_column


def chunk_sizes(n_frames: int, chunk_size: int = 4) -> list[int]:
    """Frames per chunk of ``chunk_size`` consecutive frames; the last may be shorter."""
    full, rest = divmod(n_frames, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def sampling_rate(target_fps: float, video_fps: float, duration_s: float, max_frames: int) -> float:
    """The rate actually used: the target, but never above the video's rate or ``max_frames / duration``."""
    rate = target_fps if video_fps <= 0 else min(target_fps, video_fps)
    if duration_s > 0:
        rate = min(rate, max_frames / duration_s)
    return rate


def frame_item(pixels: np.ndarray, quality: int) -> dict[str, Any]:
    """A media entry of kind "frame" holding one RGB frame as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    data = buffer.getvalue()
    height, width = pixels.shape[:2]
    return {
        "kind": "frame",
        "uri": None,
        "offset": None,
        "size": len(data),
        "bytes": data,
        "sha256": hashlib.sha256(data).hexdigest(),
        "format": "jpeg",
        "width": width,
        "height": height,
        "duration_s": None,
        "fps": None,
        "n_frames": None,
        "codec": None,
    }


@register
class FrameSampler(Stage):
    """``video_frames_v1``: sample frames at a target fps into 4-frame chunks (see the module docstring)."""

    name: ClassVar[str] = "video_frames_v1"
    resources: ClassVar[Resources] = Resources(batch_size=4)

    def __init__(
        self,
        fps: float = 2.0,
        chunk_size: int = 4,
        max_frames: int = 256,
        max_side: int = 512,
        store_frames: bool = False,
        jpeg_quality: int = 90,
        timeout_s: float = 300.0,
    ) -> None:
        POSITIVE.require(f"{self.name}: fps", fps, ValueError)
        if chunk_size < 1 or max_frames < 1:
            raise ValueError(f"{self.name}: chunk_size and max_frames must be >= 1")
        self.fps, self.chunk_size, self.max_frames, self.max_side = fps, chunk_size, max_frames, max_side
        self.store_frames, self.jpeg_quality, self.timeout_s = store_frames, jpeg_quality, timeout_s

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        out: dict[str, list[Any]] = {k: [None] * n for k in ("fps", "n_frames", "chunk_sizes", "partial", "times")}
        errors: list[str | None] = [None] * n
        reasons: list[str | None] = [None] * n
        media = batch.column(S.MEDIA).to_pylist()
        for row, item in live_video_rows(batch):
            try:
                facts = video_facts(item, self.timeout_s)
                rate = sampling_rate(self.fps, facts.fps, facts.duration_s, self.max_frames)
                with video_url(item) as url:
                    frames = decode_frames(
                        url,
                        facts.width,
                        facts.height,
                        fps=rate,
                        max_side=self.max_side,
                        max_frames=self.max_frames,
                        timeout_s=self.timeout_s,
                    )
            except (BadMedia, OSError) as exc:
                errors[row] = f"{self.name}:{getattr(exc, 'reason', 'unreadable_video')}: {exc}"
                continue
            if frames.count == 0:
                reasons[row] = f"{self.name}:no_frames"
                continue
            sizes = chunk_sizes(frames.count, self.chunk_size)
            out["fps"][row], out["n_frames"][row], out["chunk_sizes"][row] = rate, frames.count, sizes
            out["partial"][row], out["times"][row] = sizes[-1] < self.chunk_size, frames.times()
            if self.store_frames:
                kept = [m for m in media[row] if m["kind"] != "frame"]
                media[row] = kept + [frame_item(p, self.jpeg_quality) for p in frames.pixels]
        columns = {
            "fps": pa.float64(),
            "n_frames": pa.int64(),
            "chunk_sizes": pa.list_(pa.int32()),
            "partial": pa.bool_(),
            "times": pa.list_(pa.float64()),
        }
        names = {"partial": "partial_chunk", "times": "frame_times"}
        for key, kind in columns.items():
            batch = set_column(batch, S.stage_column(self.name, names.get(key, key)), pa.array(out[key], kind))
        if self.store_frames:
            batch = set_column(batch, S.MEDIA, pa.array(media, batch.schema.field(S.MEDIA).type))
        batch = add_errors(batch, pa.array(errors, pa.string()))
        return add_drop_reasons(batch, pa.array(reasons, pa.string()))
