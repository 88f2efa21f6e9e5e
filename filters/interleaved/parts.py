"""The image parts of an interleaved document, and the document without some of them.

An image part is a segment: an ``image`` (a media item) or an ``image_url`` (a web page's image whose
bytes were not found: its URL is its text). What the web readers know of each image (its URL and
alt text) is in ``meta.images``; documents from other readers have no such list, so their image's
"URL" is its file path (the media item's ``uri``) and they have no alt text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

IMAGE = "image"
URL_ONLY = "image_url"  # the web readers' segment type of an image known only by its URL


@dataclass(frozen=True)
class ImageNode:
    """One image part: where it sits in the segments and what is known of it."""

    position: int  # index into the segments
    media_index: int | None  # None: an image_url part (no bytes)
    url: str | None
    alt: str | None
    width: int | None
    height: int | None
    format: str | None


def load_meta(meta: str | None) -> dict[str, Any]:
    """A record's ``meta`` JSON as a dict (empty when missing or not an object)."""
    if not meta:
        return {}
    data = json.loads(meta)
    return data if isinstance(data, dict) else {}


def image_nodes(segments: list[dict] | None, media: list[dict] | None, meta: dict[str, Any]) -> list[ImageNode]:
    """The image parts of a document, in order, with the URL and alt text the reader recorded."""
    media = media or []
    listed = [image for image in meta.get("images") or [] if isinstance(image, dict)]
    by_index = {}
    by_url = {}
    for image in listed:
        if image.get("media_index") is not None:
            by_index.setdefault(image["media_index"], image)
        elif image.get("url"):
            by_url.setdefault(image["url"], image)
    nodes = []
    for position, segment in enumerate(segments or []):
        index = segment.get("media_index")
        if segment.get("type") == IMAGE and index is not None and index < len(media):
            item = media[index]
            known = by_index.get(index, {})
            nodes.append(
                ImageNode(
                    position,
                    index,
                    known.get("url") or item.get("uri"),
                    known.get("alt"),
                    item.get("width"),
                    item.get("height"),
                    item.get("format"),
                )
            )
        elif segment.get("type") == URL_ONLY:
            url = segment.get("text")
            nodes.append(ImageNode(position, None, url, by_url.get(url, {}).get("alt"), None, None, None))
    return nodes


def without_parts(
    segments: list[dict], media: list[dict], positions: set[int]
) -> tuple[list[dict], list[dict], dict[int, int]]:
    """The segments without those at ``positions``, the media items still pointed at, and old -> new media index.

    Text parts are left as they are (two text parts may now follow each other), so the document's
    ``text`` (its text parts joined) does not change.
    """
    kept = [s for i, s in enumerate(segments) if i not in positions]
    used = sorted({s["media_index"] for s in kept if s.get("media_index") is not None})
    remap = {old: new for new, old in enumerate(used)}
    out = [{**s, "media_index": remap[s["media_index"]]} if s.get("media_index") is not None else s for s in kept]
    return out, [media[i] for i in used], remap


def has_content(segments: list[dict]) -> bool:
    """Whether a document still holds some text or an image."""
    return any((s.get("type") == "text" and (s.get("text") or "").strip()) or s.get("type") == IMAGE for s in segments)
