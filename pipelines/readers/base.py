"""What every reader shares: input files, reader options and record rows.

Readers turn one input file into record rows (plain dicts in the record schema). They never read
media bytes they can point to: a media item is a URI plus an optional byte range, checked and
hashed later by the probe stage. A line or row that cannot be parsed becomes a *failed* row with
its file and position, so the ledger accounts for it; with ``strict`` the reader raises instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import POSITIVE, check_bounds, within
from fusionforge.pipelines.core.errors import BadRecord

IMAGE_EXTENSIONS = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".png": "png",
    ".webp": "webp",
    ".gif": "gif",
    ".bmp": "bmp",
    ".tif": "tiff",
    ".tiff": "tiff",
}
VIDEO_EXTENSIONS = {".mp4": "mp4", ".webm": "webm", ".mkv": "mkv", ".mov": "mov", ".avi": "avi", ".m4v": "m4v"}
MB = 1024**2
UNRESOLVED_IMAGES = ("keep", "drop")  # a web page's image without bytes: an image_url segment, or left out
_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
DEFAULT_MAX_RECORD_MB = 256.0  # a JSONL line, a Parquet row, a tar sample's text: larger is a failed record


@dataclass(frozen=True)
class ReaderOptions:
    """Field names, the record size cap and the error policy; each is configurable from the CLI."""

    id_field: str = "id"
    text_field: str = "text"
    caption_field: str = "caption"
    image_field: str = "image"
    video_field: str = "video"
    parts_field: str = "parts"
    max_record_mb: float = within(POSITIVE, DEFAULT_MAX_RECORD_MB)
    unresolved_images: str = "keep"
    strict: bool = False

    def __post_init__(self) -> None:
        problem = None
        if self.unresolved_images not in UNRESOLVED_IMAGES:
            problem = f"unresolved_images must be one of {', '.join(UNRESOLVED_IMAGES)}"
        check_bounds(self, problem)


@dataclass(frozen=True)
class InputFile:
    """One file of one source, with the relative name that derived ids are built from."""

    path: str
    rel: str
    source: str
    format: str
    start: int = 0  # byte range of a split uncompressed JSONL file: lines starting in [start, end)
    end: int | None = None
    first_line: int = 1  # line number of the first line at `start`
    index: str | None = None  # a WARC's URL index over the WARC files read with it (warc_index.py)


def media_ref(
    kind: str,
    uri: str,
    fmt: str | None = None,
    offset: int | None = None,
    size: int | None = None,
    data: bytes | None = None,
) -> dict[str, Any]:
    """A media item that points at its bytes (or embeds them); the probe stage fills the rest."""
    item = dict.fromkeys(S.MEDIA_FIELDS)
    item.update(kind=kind, uri=uri, format=fmt, offset=offset, size=size, bytes=data)
    return item


def media_kind_of(name: str) -> tuple[str, str] | None:
    """``("image", "jpeg")`` / ``("video", "mp4")`` from a file name, or None."""
    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image", IMAGE_EXTENSIONS[suffix]
    if suffix in VIDEO_EXTENSIONS:
        return "video", VIDEO_EXTENSIONS[suffix]
    return None


def record_row(
    file: InputFile,
    position: int,
    modality: str,
    text: str | None,
    *,
    media=(),
    segments=None,
    meta: dict[str, Any] | None = None,
    own_id: Any = None,
) -> dict[str, Any]:
    """A record row; the id is the input's own id when it has one, else source + file + position."""
    meta = dict(meta or {})
    if own_id is not None and own_id != "":
        meta["input_id"] = own_id
        record_id = f"{file.source}/{own_id}"
    else:
        record_id = derived_id(file, position)
    return {
        S.ID: record_id,
        S.SOURCE: file.source,
        S.MODALITY: modality,
        S.TEXT: text,
        S.SEGMENTS: segments,
        S.MEDIA: list(media),
        S.META: json.dumps(meta, ensure_ascii=False, sort_keys=True),
        S.INPUT_FILE: file.path,
        S.INPUT_POSITION: position,
    }


def derived_id(file: InputFile, position: int) -> str:
    """An id from where the record sits, never from its content, so exact duplicates stay distinct."""
    return f"{file.source}/{file.rel}#{position}"


def claim_id(row: dict[str, Any], file: InputFile, used: set[str]) -> None:
    """Make the row's id one that no earlier record uses, and add it to ``used``.

    The first record (in input order) with an id keeps it. A later one gets its position-derived id
    (``{source}/{file}#{position}``; ``~2``, ``~3``... in the odd case that an own id already looks
    like that), and ``meta.repeated_id`` names the id it would have had; ``meta.input_id`` still holds
    the input's own id. The rule depends on input order only, never on how inputs were partitioned.
    """
    record_id = row[S.ID]
    if record_id in used:
        base = derived_id(file, row[S.INPUT_POSITION])
        new_id, copy = base, 1
        while new_id in used:
            copy += 1
            new_id = f"{base}~{copy}"
        meta = json.loads(row[S.META] or "{}")
        meta["repeated_id"] = record_id
        row[S.META] = json.dumps(meta, ensure_ascii=False, sort_keys=True)
        row[S.ID] = record_id = new_id
    used.add(record_id)


def failed_row(
    file: InputFile,
    position: int,
    error: str,
    modality: str = "text",
    options: ReaderOptions | None = None,
    own_id: Any = None,
) -> dict[str, Any]:
    """A row for an input that could not be read; raises instead under ``strict``."""
    if options is not None and options.strict:
        raise BadRecord(error, where=f"{file.path}:{position}")
    row = record_row(file, position, modality, None, own_id=own_id if isinstance(own_id, (str, int)) else None)
    row[S.ERROR] = f"read:{error}"
    return row


def dropped_row(
    file: InputFile,
    position: int,
    reason: str,
    modality: str,
    meta: dict[str, Any] | None = None,
    own_id: Any = None,
) -> dict[str, Any]:
    """A row for an input record that is read but is not one to keep (a 404, an image response)."""
    row = record_row(file, position, modality, None, meta=meta, own_id=own_id)
    row[S.DROP_REASON] = f"read:{reason}"
    return row


def sniff_image(head: bytes) -> str | None:
    """The image format of encoded bytes by their signature (formats the probe decodes), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((fmt for signature, fmt in _SIGNATURES if head.startswith(signature)), None)


def resolve_local(reference: str, relative_to: str) -> str:
    """A media path from an input row, resolved against the folder of the file that names it."""
    path = Path(reference).expanduser()
    if not path.is_absolute():
        path = Path(relative_to).parent / path
    return os.path.normpath(path)


def split_meta(row: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """The row's fields that are not mapped to record columns, kept as metadata."""
    return {k: v for k, v in row.items() if k not in used and _json_safe(v)}


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
