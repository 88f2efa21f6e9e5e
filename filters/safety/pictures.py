"""The pictures a record shows: its decoded images and, for a video, keyframes spread over it.

The safety stages judge what a viewer would see, so an interleaved document gives every image, a
video gives at most ``max_keyframes`` keyframes (``-skip_frame nokey``: each one a full picture, the
cheapest frames to decode). Images go through the bounded decoder (the pixel count is checked from the
header first); videos through ffmpeg with a timeout. Both raise ``BadMedia`` or ``OSError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fusionforge.filters.media import item_bytes, video_url
from fusionforge.filters.video.clip_score import spread
from fusionforge.filters.video.common import video_facts
from fusionforge.filters.video.decode import decode_frames
from fusionforge.pipelines.core.images import decode_image

PICTURE_KINDS = ("image", "video")


@dataclass(frozen=True)
class Picture:
    """One RGB picture (height, width, 3) and where it came from: ``media_index`` of the record's media."""

    media_index: int
    keyframe: bool
    rgb: np.ndarray


@dataclass(frozen=True)
class PictureLimits:
    """How much of a record is decoded: the image pixel bound, and keyframes per video, their size and time."""

    max_pixels: int
    max_keyframes: int
    keyframe_side: int
    timeout_s: float


def has_pictures(media: list[dict[str, Any]] | None) -> bool:
    return any(item.get("kind") in PICTURE_KINDS for item in media or [])


def record_pictures(media: list[dict[str, Any]] | None, limits: PictureLimits) -> list[Picture]:
    """Every image of the record and the spread keyframes of every video, decoded to RGB."""
    pictures = []
    for index, item in enumerate(media or []):
        if item.get("kind") == "image":
            image = decode_image(item_bytes(item), limits.max_pixels).convert("RGB")
            pictures.append(Picture(index, False, np.asarray(image)))
        elif item.get("kind") == "video":
            pictures.extend(Picture(index, True, frame) for frame in keyframes(item, limits))
    return pictures


def keyframes(item: dict[str, Any], limits: PictureLimits) -> list[np.ndarray]:
    """At most ``max_keyframes`` keyframes of a video, evenly spread, scaled to fit ``keyframe_side``."""
    facts = video_facts(item, limits.timeout_s)
    with video_url(item) as url:
        frames = decode_frames(
            url,
            facts.width,
            facts.height,
            max_side=limits.keyframe_side,
            keyframes_only=True,
            timeout_s=limits.timeout_s,
        ).pixels
    return [frames[i] for i in spread(len(frames), limits.max_keyframes)]
