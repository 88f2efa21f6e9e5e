"""Check every media item of a record and fill in what it is: size, duration, codec, sha256.

Images are decoded (bounded by a pixel limit) so that truncated files are caught at ingest, not
in a training run; videos are probed with ffprobe and, by default, decoded once to nowhere. A
record whose media fails gets ``error`` set and keeps its row, so the ledger says why.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import pyarrow as pa

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadMedia, BadRecord
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS, inspect_image
from fusionforge.pipelines.core.io import read_range
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, Stage, set_column
from fusionforge.pipelines.core.video import DEFAULT_TOOL_MEMORY_MB, ffmpeg_url, probe_video, verify_decode

HASH_CHUNK = 8 * 1024**2
VIDEO_CHECKS = ("decode", "probe")  # a full decode (catches truncation), or headers only


@register
class ProbeMedia(Stage):
    """``ingest_probe_media_v1``: validate and describe media; errors become ledger reasons."""

    name: ClassVar[str] = "ingest_probe_media_v1"
    resources: ClassVar[Resources] = Resources(batch_size=64)

    def __init__(
        self,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_media_mb: float = 2048,
        video_check: str = "decode",
        timeout_s: float = 60.0,
        strict: bool = False,
        tool_memory_mb: float = DEFAULT_TOOL_MEMORY_MB,
    ) -> None:
        if video_check not in VIDEO_CHECKS:
            raise ValueError("video_check must be 'decode' (full decode, catches truncation) or 'probe'")
        self.max_pixels = max_pixels
        self.max_media_bytes = int(max_media_mb * 1024**2)
        self.video_check = video_check
        self.timeout_s = timeout_s
        self.strict = strict
        self.tool_memory_mb = tool_memory_mb

    def __call__(self, batch: pa.Table) -> pa.Table:
        media_lists = batch.column(S.MEDIA).to_pylist()
        errors = batch.column(S.ERROR).to_pylist()
        for row, media in enumerate(media_lists):
            if errors[row] is not None or not media:
                continue
            try:
                for item in media:
                    self._probe(item)
            except (BadMedia, OSError) as exc:
                reason = getattr(exc, "reason", "unreadable_media")
                detail = getattr(exc, "detail", f"{type(exc).__name__}: {exc}")
                failing = next((m for m in media if m.get("sha256") is None), media[-1])
                uri = failing["uri"] or ""
                if self.strict:
                    raise BadRecord(f"{reason}: {detail}", where=_where(batch, row, failing)) from exc
                errors[row] = f"probe:{reason}: {detail} ({uri})"
        batch = set_column(batch, S.MEDIA, pa.array(media_lists, pa.list_(S.MEDIA_TYPE)))
        return set_column(batch, S.ERROR, pa.array(errors, pa.string()))

    def _probe(self, item: dict[str, Any]) -> None:
        size = len(item["bytes"]) if item.get("bytes") is not None else item.get("size")
        if size is not None and size > self.max_media_bytes:
            raise BadMedia("media_too_large", f"{size} bytes > {self.max_media_bytes}")
        if item["kind"] == "image":
            data = item["bytes"]
            if data is None:
                data = read_range(item["uri"], item["offset"], item["size"])
            info = inspect_image(data, self.max_pixels)
            item.update(
                width=info.width,
                height=info.height,
                format=info.format or item.get("format"),
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            return
        if item.get("bytes") is not None:
            raise BadMedia("inline_video", "videos must be files, not embedded bytes")
        url = ffmpeg_url(item["uri"], item["offset"], item["size"])
        info = probe_video(url, self.timeout_s, self.tool_memory_mb)
        if self.video_check == "decode":
            verify_decode(url, self.timeout_s, self.tool_memory_mb)
        item.update(
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
            fps=info.fps,
            n_frames=info.n_frames,
            codec=info.codec,
        )
        item["sha256"] = file_sha256(item["uri"], item["offset"], item["size"])


def _where(batch: pa.Table, row: int, item: dict[str, Any]) -> str:
    """Where the bad media is: ``listing:line: media path``; a media file read on its own is just its
    path, a member of an input tar is ``tar:sample``."""
    listing, position = batch.column(S.INPUT_FILE)[row].as_py(), batch.column(S.INPUT_POSITION)[row].as_py()
    if item["uri"] != listing:
        return f"{listing}:{position}: {item['uri']}"
    return listing if item.get("offset") is None else f"{listing}:{position}"


def file_sha256(uri: str, offset: int | None, size: int | None) -> str:
    """sha256 of a file or a byte range of it, read in chunks."""
    digest = hashlib.sha256()
    with open(uri, "rb") as handle:
        handle.seek(offset or 0)
        left = size if offset is not None else None
        while left is None or left > 0:
            chunk = handle.read(HASH_CHUNK if left is None else min(HASH_CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            if left is not None:
                left -= len(chunk)
    return digest.hexdigest()
