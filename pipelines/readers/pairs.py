"""Image-text and video-text pairs from JSONL or Parquet: a local media path (or embedded bytes) and a caption.

The image field may be a path string (relative paths resolve against the listing file's folder)
or a Hugging Face style struct ``{"bytes": ..., "path": ...}``. A row without the image field but
with the video field (WebVid-style listings) is a video record; videos must be files. A missing
file is a failed row.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import (
    InputFile,
    ReaderOptions,
    failed_row,
    media_kind_of,
    media_ref,
    record_row,
    resolve_local,
    split_meta,
)
from fusionforge.pipelines.readers.guard import read_structured


def read_pairs(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """One image record per row with ``options.image_field``, else one video record per row with ``video_field``."""
    return read_structured(file, options, Modality.IMAGE, pair_record)


def pair_record(file: InputFile, position: int, row: dict[str, Any], options: ReaderOptions) -> dict[str, Any]:
    if options.image_field in row:
        modality, field = Modality.IMAGE, options.image_field
    elif options.video_field in row:
        modality, field = Modality.VIDEO, options.video_field
    else:
        missing = f"missing_field: no {options.image_field!r} or {options.video_field!r} path"
        return failed_row(file, position, missing, Modality.IMAGE, options, row.get(options.id_field))
    media = image_from_field(row[field], file.path, modality.value)
    if isinstance(media, str):
        return failed_row(file, position, media, modality, options, row.get(options.id_field))
    caption = row.get(options.caption_field, row.get(options.text_field))
    used = {options.image_field, options.video_field, options.caption_field, options.text_field, options.id_field}
    return record_row(
        file,
        position,
        modality,
        caption if isinstance(caption, str) else "",
        media=[media],
        meta=split_meta(row, used),
        own_id=row.get(options.id_field),
    )


def image_from_field(value: Any, listing_path: str, kind: str = "image") -> dict[str, Any] | str:
    """A media reference from a path string or a ``{bytes, path}`` struct, or an error text."""
    if isinstance(value, dict):
        if value.get("bytes"):
            data, name = value["bytes"], value.get("path") if isinstance(value.get("path"), str) else None
            if not isinstance(data, (bytes, bytearray)):
                return f"wrong_type: inline {kind} 'bytes' must be binary, found {type(data).__name__}"
            fmt = (media_kind_of(name or "") or (kind, None))[1]
            return media_ref(kind, name or "<inline>", fmt, data=bytes(data))
        value = value.get("path")
    if not isinstance(value, str) or not value:
        return f"missing_field: no {kind} path"
    path = resolve_local(value, listing_path)
    if not os.path.isfile(path):
        return f"missing_file: {path}"
    detected = media_kind_of(path)
    fmt = detected[1] if detected else None
    return media_ref(kind, path, fmt, size=os.path.getsize(path))
