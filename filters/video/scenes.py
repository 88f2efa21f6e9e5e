"""Scene cuts: ffmpeg's scene-change score per frame, cut planning, and clip extraction.

Detection runs ``select='gte(scene,0)',metadata=print`` on a downscaled copy of the stream: ffmpeg
prints each frame's ``pts_time`` and ``lavfi.scene_score`` (0 = same picture, 1 = a different one).
A cut is placed at the first frame whose score exceeds the threshold, so a clip starts exactly on
the first frame of its scene. Planning is pure: cuts closer than ``min_clip_s`` to the previous cut
(or to the end) are ignored, as PySceneDetect's ``min_scene_len`` does, and scenes longer than
``max_clip_s`` are split into equal parts.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import ffmpeg

from fusionforge.filters.video.decode import run_ffmpeg, scaled_size
from fusionforge.pipelines.core.video import VideoInfo, probe_video

_FRAME = re.compile(r"pts_time:\s*([-+0-9.eE]+)")
_SCORE = re.compile(r"lavfi\.scene_score=([-+0-9.eE]+)")


def scene_scores(
    url: str, width: int, height: int, detect_side: int = 320, timeout_s: float = 300.0
) -> list[tuple[float, float]]:
    """(pts_time, scene score) of every frame of the first video stream."""
    out_w, out_h = scaled_size(width, height, detect_side)
    stream = (
        ffmpeg.input(url)
        .filter("scale", out_w, out_h)
        .filter("select", "gte(scene,0)")
        .filter("metadata", "print", file="-")
        .output("-", format="null", an=None)
    )
    return parse_scene_scores(run_ffmpeg(stream, timeout_s).decode(errors="replace"))


def parse_scene_scores(text: str) -> list[tuple[float, float]]:
    """Pairs from the ``metadata=print`` output (a ``frame:`` line, then its ``lavfi.`` lines)."""
    pairs: list[tuple[float, float]] = []
    current: float | None = None
    for line in text.splitlines():
        if (frame := _FRAME.search(line)) is not None:
            current = float(frame.group(1))
        elif (score := _SCORE.search(line)) is not None and current is not None:
            pairs.append((current, float(score.group(1))))
            current = None
    return pairs


def plan_clips(
    scores: Sequence[tuple[float, float]],
    duration: float,
    threshold: float = 0.3,
    min_clip_s: float = 1.0,
    max_clip_s: float | None = None,
) -> list[tuple[float, float]]:
    """(start, end) of each clip, covering [0, duration] without gaps.

    Args:
        scores: (time, scene score) per frame, in time order.
        duration: the video's duration in seconds.
        threshold: a frame scoring above this starts a new scene.
        min_clip_s: a cut that would leave a clip shorter than this is ignored.
        max_clip_s: longer scenes are split into equal parts no longer than this (None: never).
    """
    if duration <= 0:
        return []
    start = scores[0][0] if scores else 0.0
    cuts = [start]
    for time, score in scores:
        if score > threshold and time - cuts[-1] >= min_clip_s and duration - time >= min_clip_s:
            cuts.append(time)
    bounds = [*cuts, max(duration, cuts[-1])]
    clips: list[tuple[float, float]] = []
    for begin, end in zip(bounds, bounds[1:]):
        parts = 1 if not max_clip_s else max(1, math.ceil((end - begin) / max_clip_s - 1e-9))
        step = (end - begin) / parts
        clips.extend((round(begin + i * step, 6), round(begin + (i + 1) * step, 6)) for i in range(parts))
    return clips


@dataclass(frozen=True)
class ClipEncoding:
    """How clips are written: re-encoded with libx264 (frame-accurate) or stream-copied (keyframe-aligned)."""

    reencode: bool = True
    crf: int = 18
    preset: str = "veryfast"
    threads: int = 1


def extract_clip(
    url: str, start: float, end: float, encoding: ClipEncoding, timeout_s: float
) -> tuple[bytes, VideoInfo]:
    """An MP4 holding [start, end) of the input (video, and audio if there is any), and its probe facts."""
    handle, path = tempfile.mkstemp(prefix="ff-clip-", suffix=".mp4")
    os.close(handle)
    try:
        source = ffmpeg.input(url, ss=f"{start:.6f}", t=f"{end - start:.6f}")
        if encoding.reencode:
            options = {
                "vcodec": "libx264",
                "crf": encoding.crf,
                "preset": encoding.preset,
                "pix_fmt": "yuv420p",
                "acodec": "aac",
            }
        else:
            options = {"c": "copy"}
        run_ffmpeg(
            source.output(path, movflags="+faststart", **options).overwrite_output(), timeout_s, encoding.threads
        )
        info = probe_video(path, timeout_s)
        with open(path, "rb") as clip:
            return clip.read(), info
    finally:
        os.unlink(path)
