"""Blur the faces ``safety_faces_v1`` found, in the images of the records a step keeps.

An image in a shard is a byte range of the input; a blurred one is new bytes. They travel inline in
the media item (``bytes``; ``uri`` and ``offset`` cleared, ``size`` and ``sha256`` of the new bytes),
as derived frames do, and the shard writer stores them like any media (atomically, in the record's
tar member); ``rejected/`` never holds media bytes. The record's ``content_hash`` is computed again
from the new media hashes: its content changed. The image keeps its format where Pillow writes it
(JPEG and WebP at quality 95, PNG); other formats become PNG. Each face box is grown by ``MARGIN`` on
every side and blurred with a Gaussian of radius a fifth of its longer side: the detector finds no
face in the result (tested). A record whose image cannot be rewritten fails (its faces are never
written unblurred).
"""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from typing import Any

import pyarrow as pa
from PIL import Image, ImageFilter

from fusionforge.filters.media import item_bytes
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.images import decode_image
from fusionforge.pipelines.core.stage import add_errors, set_column

MARGIN = 0.15
WRITERS = {"jpeg": ("JPEG", {"quality": 95}), "png": ("PNG", {}), "webp": ("WEBP", {"quality": 95})}


def blur_regions(image: Image.Image, boxes: list[tuple[int, int, int, int]]) -> Image.Image:
    """A copy of ``image`` with each (x, y, w, h) box, grown by ``MARGIN``, Gaussian-blurred."""
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    out = image.copy()
    for x, y, w, h in boxes:
        dx, dy = round(w * MARGIN), round(h * MARGIN)
        area = (max(0, x - dx), max(0, y - dy), min(image.width, x + w + dx), min(image.height, y + h + dy))
        region = out.crop(area).filter(ImageFilter.GaussianBlur(max(2.0, max(w, h) / 5)))
        out.paste(region, area[:2])
    return out


def encode_like(image: Image.Image, fmt: str | None) -> tuple[bytes, str]:
    """Encoded bytes of ``image`` in ``fmt`` where Pillow writes it, else PNG; and the format used."""
    fmt = fmt if fmt in WRITERS else "png"
    name, options = WRITERS[fmt]
    if name == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=name, **options)
    return buffer.getvalue(), fmt


def blurred_item(item: dict[str, Any], boxes: list[tuple[int, int, int, int]]) -> dict[str, Any]:
    """The media item with its image's faces blurred, its new bytes inline."""
    data, fmt = encode_like(blur_regions(decode_image(item_bytes(item)), boxes), item.get("format"))
    return {
        **item,
        "uri": None,
        "offset": None,
        "bytes": data,
        "size": len(data),
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def blur_batch(batch: pa.Table, stage: str) -> pa.Table:
    """Blur the found faces of every live row; add ``{stage}__blurred`` (images rewritten per row)."""
    if S.stage_column(stage, "boxes") not in batch.column_names:  # no row of the batch was judged
        return batch
    found = batch.column(S.stage_column(stage, "boxes")).to_pylist()
    live = [
        r is None and e is None
        for r, e in zip(batch.column(S.DROP_REASON).to_pylist(), batch.column(S.ERROR).to_pylist())
    ]
    media = batch.column(S.MEDIA).to_pylist()
    hashes = batch.column(S.CONTENT_HASH).to_pylist()
    blurred: list[int | None] = [None if boxes is None else 0 for boxes in found]
    errors: list[str | None] = [None] * batch.num_rows
    for row, boxes in enumerate(found):
        if not boxes or not live[row]:
            continue
        by_image: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        for box in boxes:
            by_image[box["media_index"]].append((box["x"], box["y"], box["w"], box["h"]))
        try:
            for index, image_boxes in by_image.items():
                media[row][index] = blurred_item(media[row][index], image_boxes)
        except (BadMedia, OSError) as exc:
            errors[row] = f"{stage}:blur_failed: {exc}"
            continue
        blurred[row] = len(by_image)
        hashes[row] = record_hash(batch, row, media[row])
    batch = set_column(batch, S.MEDIA, pa.array(media, batch.schema.field(S.MEDIA).type))
    batch = set_column(batch, S.CONTENT_HASH, pa.array(hashes, pa.string()))
    batch = set_column(batch, S.stage_column(stage, "blurred"), pa.array(blurred, pa.int64()))
    return add_errors(batch, pa.array(errors, pa.string()))


def record_hash(batch: pa.Table, row: int, media: list[dict[str, Any]]) -> str:
    """The record's content hash over its text and its (new) media hashes."""
    return S.content_hash(
        batch.column(S.MODALITY)[row].as_py(),
        batch.column(S.TEXT)[row].as_py(),
        [item.get("sha256") for item in media],
        batch.column(S.SEGMENTS)[row].as_py(),
    )
