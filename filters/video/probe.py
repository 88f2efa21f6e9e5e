"""Video probe facts and the rules on them: duration, frame rate, resolution, codec, stream count.

ffprobe runs with a wall-clock timeout on every video, inside a tar shard through a byte range, so
nothing is copied (``core/video.py: probe_video``; not ``ffmpeg.probe``, which has no timeout: that
module says why); ``verify_decode`` additionally decodes the stream to nowhere, which catches a file
cut short whose header still looks whole. A video ffprobe cannot read is an error on the row.
Defaults: ``min_duration_s`` 1.0 and ``min_side`` 64; the other limits are off (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pyarrow as pa

from fusionforge.filters.media import first_of_kind, video_url
from fusionforge.filters.rules import below, check_limits, exceeds, first_failing
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, ScoringStage
from fusionforge.pipelines.core.video import probe_video, verify_decode

NUMERIC = ("duration_s", "fps", "width", "height", "n_streams")


@register
class VideoProbe(ScoringStage):
    """``video_probe_v1``: ffprobe facts of each video and limits on them (see the module docstring)."""

    name: ClassVar[str] = "video_probe_v1"
    resources: ClassVar[Resources] = Resources(batch_size=16)

    def __init__(
        self,
        min_duration_s: float | None = 1.0,
        max_duration_s: float | None = None,
        min_fps: float | None = None,
        max_fps: float | None = None,
        min_side: int | None = 64,
        max_side: int | None = None,
        codecs: Sequence[str] | None = None,
        max_streams: int | None = None,
        verify_decode: bool = False,
        timeout_s: float = 60.0,
    ) -> None:
        self.limits = {
            "min_duration_s": min_duration_s,
            "max_duration_s": max_duration_s,
            "min_fps": min_fps,
            "max_fps": max_fps,
            "min_side": min_side,
            "max_side": max_side,
            "max_streams": max_streams,
        }
        check_limits(self.name, self.limits)
        self.codecs = frozenset(c.lower() for c in codecs) if codecs else None
        self.verify_decode = verify_decode
        self.timeout_s = timeout_s

    def applies(self, batch: pa.Table) -> pa.Array:
        return pa.array([first_of_kind(m, "video") is not None for m in batch.column(S.MEDIA).to_pylist()])

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        facts: dict[str, list] = {k: [] for k in (*NUMERIC, "codec", "error")}
        for media in batch.column(S.MEDIA).to_pylist():
            info, error = None, None
            try:
                with video_url(first_of_kind(media, "video")) as url:
                    info = probe_video(url, self.timeout_s)
                    if self.verify_decode:
                        verify_decode(url, self.timeout_s)
            except (BadMedia, OSError) as exc:
                error = f"{getattr(exc, 'reason', 'unreadable_video')}: {exc}"
            for key in NUMERIC:
                facts[key].append(getattr(info, key) if info and not error else None)
            facts["codec"].append(info.codec if info and not error else None)
            facts["error"].append(error)
        scores = {k: pa.array(facts[k], pa.float64()) for k in ("duration_s", "fps")}
        scores.update({k: pa.array(facts[k], pa.int64()) for k in ("width", "height", "n_streams")})
        scores["codec"] = pa.array(facts["codec"], pa.string())
        scores["error"] = pa.array(facts["error"], pa.string())
        return scores

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        s = {k: scores[k].to_numpy(zero_copy_only=False).astype(np.float64) for k in NUMERIC}
        short, long = np.fmin(s["width"], s["height"]), np.fmax(s["width"], s["height"])
        codecs = scores["codec"].to_pylist()
        lim = self.limits
        bad_codec = [self.codecs is not None and c is not None and c.lower() not in self.codecs for c in codecs]
        return first_failing(
            len(codecs),
            [
                ("too_short", below(s["duration_s"], lim["min_duration_s"])),
                ("too_long", exceeds(s["duration_s"], lim["max_duration_s"])),
                ("low_fps", below(s["fps"], lim["min_fps"])),
                ("high_fps", exceeds(s["fps"], lim["max_fps"])),
                ("too_small", below(short, lim["min_side"])),
                ("too_large", exceeds(long, lim["max_side"])),
                ("codec_not_allowed", np.array(bad_codec, dtype=bool)),
                ("too_many_streams", exceeds(s["n_streams"], lim["max_streams"])),
            ],
        )
