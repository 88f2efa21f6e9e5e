"""Motion score: the mean absolute difference between consecutive frames, to drop static clips.

Frames are sampled at ``fps`` (default 4), in gray, at most ``max_side`` (64) pixels on the longer
side: motion is about how much changes, not about detail, and a small decode is cheap. The score is
the mean of |frame[i+1] - frame[i]| over pixels and frame pairs, divided by 255 (0 = a still
picture). Compression noise of a still picture stays under about 0.001; the default ``min_motion``
0.002 drops slideshows and frozen shots. Fewer than two sampled frames: every frame is used instead.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.media import first_of_kind, video_url
from fusionforge.filters.rules import below, check_limits, first_failing
from fusionforge.filters.video.common import video_facts
from fusionforge.filters.video.decode import decode_frames
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import POSITIVE
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, ScoringStage


def motion_score(frames: np.ndarray) -> float:
    """Mean absolute difference of consecutive gray frames, in [0, 1] (NaN for fewer than two frames)."""
    if len(frames) < 2:
        return float("nan")
    values = frames.astype(np.int16)
    return float(np.abs(np.diff(values, axis=0)).mean() / 255.0)


@register
class MotionScore(ScoringStage):
    """``video_motion_v1``: drop static videos by their mean frame difference (see the module docstring)."""

    name: ClassVar[str] = "video_motion_v1"
    resources: ClassVar[Resources] = Resources(batch_size=8)

    def __init__(
        self,
        min_motion: float | None = 0.002,
        fps: float = 4.0,
        max_side: int = 64,
        max_frames: int = 512,
        timeout_s: float = 300.0,
    ) -> None:
        check_limits(self.name, {"min_motion": min_motion})
        POSITIVE.require(f"{self.name}: fps", fps, ValueError)
        self.min_motion, self.fps, self.max_side, self.max_frames = min_motion, fps, max_side, max_frames
        self.timeout_s = timeout_s

    def applies(self, batch: pa.Table) -> pa.Array:
        has_video = pa.array([first_of_kind(m, "video") is not None for m in batch.column(S.MEDIA).to_pylist()])
        return pc.and_(has_video, batch.column(S.DROP_REASON).is_null())

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        scores, frames_used, errors = [], [], []
        for media in batch.column(S.MEDIA).to_pylist():
            item = first_of_kind(media, "video")
            try:
                facts = video_facts(item, self.timeout_s)
                with video_url(item) as url:
                    frames = self._gray_frames(url, facts.width, facts.height, self.fps)
                    if frames.shape[0] < 2:
                        frames = self._gray_frames(url, facts.width, facts.height, None)
            except (BadMedia, OSError) as exc:
                scores.append(np.nan)
                frames_used.append(None)
                errors.append(f"{getattr(exc, 'reason', 'unreadable_video')}: {exc}")
                continue
            scores.append(motion_score(frames))
            frames_used.append(int(frames.shape[0]))
            errors.append(None)
        values = np.array(scores, dtype=np.float64)
        return {
            "motion": pa.array(values, pa.float64(), mask=np.isnan(values)),
            "frames": pa.array(frames_used, pa.int64()),
            "error": pa.array(errors, pa.string()),
        }

    def _gray_frames(self, url: str, width: int, height: int, fps: float | None) -> np.ndarray:
        return decode_frames(
            url,
            width,
            height,
            fps=fps,
            max_side=self.max_side,
            gray=True,
            max_frames=self.max_frames,
            timeout_s=self.timeout_s,
        ).pixels

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        motion = scores["motion"].to_numpy(zero_copy_only=False)
        return first_failing(len(motion), [("static", below(motion, self.min_motion))])
