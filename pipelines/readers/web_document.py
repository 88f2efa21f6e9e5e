"""An extracted page (text and image parts) becomes one interleaved record; WARC and HTML readers share it.

Each image part is handed to the reader's resolver, which finds its bytes (a byte range of a WARC,
a copy out of a gzip WARC, a local file) or says why it cannot. An image the page shows twice is
one media item that two segments point at. An image that cannot be resolved stays in the document
as an ``image_url`` segment (its URL as the segment's text, no media: nothing downstream counts or
decodes it), or is left out with ``--unresolved-images drop``; either way ``meta.images`` lists
every image of the page in order (source, resolved URL, alt text, media index or the reason it has
none) and ``meta.unresolved_images`` counts the misses, so the document's own record says what it lost.
Inline ``data:`` images are decoded here, whatever the reader.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions, dropped_row, media_ref, record_row, sniff_image
from fusionforge.pipelines.readers.html_extract import Page

URL_ONLY = "image_url"  # the segment type of an image known only by its URL


@dataclass(frozen=True)
class Resolved:
    """Where an image source leads: its identity (an absolute URL or path), and its media item or why not."""

    key: str
    media: dict[str, Any] | None = None
    reason: str | None = None  # a short code, then ": " and details


Resolver = Callable[[str, int], Resolved]  # (source as written, bytes it may still copy) -> Resolved


def page_record(
    file: InputFile,
    position: int,
    page: Page,
    resolve: Resolver,
    options: ReaderOptions,
    meta: dict[str, Any],
    own_id: str | None = None,
) -> dict[str, Any]:
    """The interleaved record of a page, or a dropped ``empty_document`` row when nothing is left."""
    segments: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    seen: dict[str, Resolved] = {}  # source as written -> what it resolved to (a page may repeat an image)
    by_key: dict[str, int] = {}  # resolved URL or path -> media index
    budget = int(options.max_record_mb * 1024**2)  # bytes a document may copy in
    for part in page.parts:
        if isinstance(part, str):
            _add_text(segments, part)
            continue
        found = seen.get(part.src)
        if found is None:
            found = inline_image(part.src, budget) if part.src.startswith("data:") else resolve(part.src, budget)
            seen[part.src] = found
        index = by_key.get(found.key) if found.media is not None else None
        if found.media is not None and index is None:
            index = by_key[found.key] = len(media)
            media.append(found.media)
            budget -= len(found.media.get("bytes") or b"")
        reason = None if index is not None else found.reason or "unresolved_image"
        images.append({"src": part.src, "url": found.key, "alt": part.alt, "media_index": index, "unresolved": reason})
        if index is not None:
            segments.append({"type": "image", "text": None, "media_index": index})
        elif options.unresolved_images == "keep":
            segments.append({"type": URL_ONLY, "text": found.key, "media_index": None})
    if not any(s["type"] == "text" for s in segments) and not media:
        reason = "empty_document: no main text or image"
        return dropped_row(file, position, reason, Modality.INTERLEAVED, meta, own_id)
    meta = {**meta, "title": page.title, "charset": page.encoding, "images": images}
    meta["unresolved_images"] = sum(1 for image in images if image["media_index"] is None)
    text = "\n\n".join(s["text"] for s in segments if s["type"] == "text")
    return record_row(
        file, position, Modality.INTERLEAVED, text, media=media, segments=segments, meta=meta, own_id=own_id
    )


def _add_text(segments: list[dict[str, Any]], text: str) -> None:
    """A text segment; text that follows text (an image between them was dropped) joins it."""
    if segments and segments[-1]["type"] == "text":
        segments[-1]["text"] += "\n\n" + text
    else:
        segments.append({"type": "text", "text": text, "media_index": None})


def inline_image(src: str, budget: int) -> Resolved:
    """A ``data:`` URL's image, decoded (its bytes are copied into the record)."""
    header, comma, payload = src.partition(",")
    key = f"{header},sha256:{hashlib.sha256(payload.encode()).hexdigest()[:16]}"  # data URLs can be megabytes
    if not comma:
        return Resolved(key, reason="bad_data_url: no comma")
    try:
        data = base64.b64decode(payload, validate=False) if header.endswith(";base64") else unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        return Resolved(key, reason=f"bad_data_url: {exc}")
    if len(data) > budget:
        return Resolved(key, reason=f"record_too_large: the inline image has {len(data):,} bytes")
    fmt = sniff_image(data)
    if fmt is None:
        return Resolved(key, reason=f"unsupported_image: {header[5:] or 'data URL'}")
    return Resolved(key, media=media_ref("image", "<inline>", fmt, data=data))
