"""Media items of a record: finding them, reading their bytes, handing videos to ffmpeg.

Media are references (a file, or a byte range of a tar shard), except derived media (a scene clip, a
sampled frame) that travel inline in ``bytes`` until the writer puts them in a shard.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fusionforge.pipelines.core.io import read_range
from fusionforge.pipelines.core.video import ffmpeg_url


def items_of_kind(media: list[dict[str, Any]] | None, kind: str) -> list[dict[str, Any]]:
    """The media entries of one record with this ``kind`` ("image", "video", "frame")."""
    return [item for item in media or [] if item.get("kind") == kind]


def first_of_kind(media: list[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    found = items_of_kind(media, kind)
    return found[0] if found else None


def item_bytes(item: dict[str, Any]) -> bytes:
    """The encoded bytes of a media item (inline, or read from its file or byte range)."""
    if item.get("bytes") is not None:
        return item["bytes"]
    return read_range(item["uri"], item.get("offset"), item.get("size"))


@contextmanager
def video_url(item: dict[str, Any]) -> Iterator[str]:
    """An input URL ffmpeg can read for a video item; inline bytes go through a temporary file."""
    if item.get("bytes") is None:
        yield ffmpeg_url(item["uri"], item.get("offset"), item.get("size"))
        return
    suffix = "." + (item.get("format") or "mp4")
    handle, path = tempfile.mkstemp(prefix="ff-video-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(item["bytes"])
        yield path
    finally:
        os.unlink(path)
