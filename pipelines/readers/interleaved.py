"""Interleaved image-text documents from JSONL or Parquet (OBELICS-like).

Two layouts are accepted:

- ``{"parts": [{"type": "text", "text": "..."}, {"type": "image", "image": "a.jpg"}, ...]}``
- OBELICS' parallel lists ``{"texts": ["...", null], "images": [null, "a.jpg"]}``.

Media parts are local paths (resolved against the listing's folder) or ``{bytes, path}`` structs.
A part that points at a missing file fails the whole document: a document with a hole in it is
not the document the author wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import (
    InputFile,
    ReaderOptions,
    failed_row,
    record_row,
    split_meta,
)
from fusionforge.pipelines.readers.guard import read_structured
from fusionforge.pipelines.readers.pairs import image_from_field


def read_interleaved(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """One interleaved record per row."""
    return read_structured(file, options, Modality.INTERLEAVED, interleaved_record)


def interleaved_record(file: InputFile, position: int, row: dict[str, Any], options: ReaderOptions) -> dict[str, Any]:
    parts = _parts_of(row, options.parts_field)
    if isinstance(parts, str):
        return failed_row(file, position, parts, Modality.INTERLEAVED, options, row.get(options.id_field))
    built = build_segments(parts, file.path)
    if isinstance(built, str):
        return failed_row(file, position, built, Modality.INTERLEAVED, options, row.get(options.id_field))
    segments, media = built
    text = "\n\n".join(s["text"] for s in segments if s["type"] == "text")
    used = {options.parts_field, "texts", "images", options.id_field}
    return record_row(
        file,
        position,
        Modality.INTERLEAVED,
        text,
        media=media,
        segments=segments,
        meta=split_meta(row, used),
        own_id=row.get(options.id_field),
    )


def _parts_of(row: dict[str, Any], parts_field: str) -> list[dict[str, Any]] | str:
    parts = row.get(parts_field)
    if isinstance(parts, list):
        return parts
    texts, images = row.get("texts"), row.get("images")
    if isinstance(texts, list) and isinstance(images, list) and len(texts) == len(images):
        return [
            {"type": "text", "text": t} if t is not None else {"type": "image", "image": i}
            for t, i in zip(texts, images)
            if t is not None or i is not None
        ]
    return f"missing_field: {parts_field!r} must be a list of parts (or OBELICS 'texts'/'images' lists)"


def build_segments(parts: list[Any], listing_path: str) -> tuple[list[dict], list[dict]] | str:
    """(segments, media) for a list of parts, or an error text naming the bad part."""
    segments, media = [], []
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            return f"bad_part: part {index} is {type(part).__name__}, expected an object"
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                return f"bad_part: text part {index} has no string 'text'"
            segments.append({"type": "text", "text": part["text"], "media_index": None})
        elif kind in ("image", "video"):
            value = part.get(kind, part.get("path", part.get("url")))
            if isinstance(value, str) and value.startswith(("http://", "https://")):
                return f"remote_media: part {index} is a URL; fusionforge ingests local files only ({value})"
            item = image_from_field(value, listing_path, kind)
            if isinstance(item, str):
                return f"{item} (part {index})"
            segments.append({"type": kind, "text": None, "media_index": len(media)})
            media.append(item)
        else:
            return f"bad_part: part {index} has type {kind!r}, expected 'text', 'image' or 'video'"
    if not segments:
        return "empty_document: no parts"
    return segments, media
