"""``dedupe_sketch_v1``: what dedupe needs to know about each record, computed batch by batch.

Per record, the stage adds the exact key, length, MinHash signature and shingle set of its text
(text documents and interleaved documents), and per media item the decoded-pixel or decoded-stream
key and the perceptual hashes (an image's pHash and its crops' hashes; a video's frame pHashes).
The record's *primary* item decides its fate: the text of a text or interleaved record, the image
of an image-text pair, the video of a video record; an interleaved document's images take part in
image dedup as secondary items. A primary item that cannot be read fails the record with the reason.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from fusionforge.filters.dedup.image_hash import (
    CROP_FRACTION,
    color_thumbnails,
    image_hashes,
    pixel_key,
)
from fusionforge.filters.dedup.minhash import TextSketcher
from fusionforge.filters.dedup.video_hash import frame_hashes, stream_key
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.config import DEFAULT_SEED
from fusionforge.pipelines.core.errors import BadMedia, BadRecord
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS, decode_image
from fusionforge.pipelines.core.io import read_range
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, Stage, add_errors, set_column
from fusionforge.pipelines.core.video import ffmpeg_url

NAME = "dedupe_sketch_v1"
TEXT_MODALITIES = (S.Modality.TEXT.value, S.Modality.INTERLEAVED.value)
MEDIA_ITEM = pa.struct(
    [
        ("index", pa.int32()),
        ("kind", pa.string()),
        ("primary", pa.bool_()),
        ("exact_hi", pa.uint64()),
        ("exact_lo", pa.uint64()),
        ("hashes", pa.binary()),
        ("thumbs", pa.binary()),
        ("size", pa.float64()),
        ("error", pa.string()),
    ]
)
COLUMNS = {  # field -> type of the columns this stage adds ("dedupe_sketch_v1__{field}")
    "text_exact_hi": pa.uint64(),
    "text_exact_lo": pa.uint64(),
    "text_length": pa.int64(),
    "signature": pa.binary(),
    "shingles": pa.binary(),
    "media": pa.list_(MEDIA_ITEM),
}


def column(field: str) -> str:
    return S.stage_column(NAME, field)


@register
class DedupeSketch(Stage):
    """Exact keys, MinHash signatures and perceptual hashes per record (see the module docstring)."""

    name: ClassVar[str] = NAME
    resources: ClassVar[Resources] = Resources(batch_size=256)

    def __init__(
        self,
        text: bool = True,
        images: bool = True,
        videos: bool = True,
        num_perm: int = 128,
        ngram: int = 5,
        seed: int = DEFAULT_SEED,
        char_ngrams: bool = False,
        casefold: bool = True,
        collapse_whitespace: bool = True,
        keep_shingles: bool = True,
        image_hash: str = "phash",
        crop_fraction: float = CROP_FRACTION,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        video_fps: float = 1.0,
        video_max_frames: int = 32,
        timeout_s: float = 60.0,
        strict: bool = False,
        drop_inputs: bool = False,
    ) -> None:
        self.sketcher = TextSketcher(
            num_perm=num_perm,
            ngram=ngram,
            seed=seed,
            char_ngrams=char_ngrams,
            casefold=casefold,
            collapse_whitespace=collapse_whitespace,
        )
        self.text, self.images, self.videos = text, images, videos
        self.keep_shingles = keep_shingles
        self.image_hash, self.crop_fraction, self.max_pixels = image_hash, crop_fraction, max_pixels
        self.video_fps, self.video_max_frames, self.timeout_s = video_fps, video_max_frames, timeout_s
        self.strict = strict
        self.drop_inputs = drop_inputs  # the dedupe pipeline keeps only what it stores, to shuffle less

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        modalities = batch.column(S.MODALITY).to_pylist()
        errors = batch.column(S.ERROR).to_pylist()
        out: dict[str, list[Any]] = {f: [None] * n for f in COLUMNS}
        text_rows = [r for r in range(n) if self.text and modalities[r] in TEXT_MODALITIES and errors[r] is None]
        if text_rows:
            self._sketch_texts(batch.column(S.TEXT).take(pa.array(text_rows, pa.int64())), text_rows, out)
        new_errors: list[str | None] = [None] * n
        ids = batch.column(S.ID).to_pylist()
        for row, media in enumerate(batch.column(S.MEDIA).to_pylist()):
            if errors[row] is None and media:
                out["media"][row], new_errors[row] = self._sketch_media(modalities[row], media, ids[row])
        for field, values in out.items():
            batch = set_column(batch, column(field), pa.array(values, COLUMNS[field]))
        if self.drop_inputs:
            batch = batch.drop_columns([c for c in (S.TEXT, S.SEGMENTS, S.MEDIA, S.META) if c in batch.column_names])
        return add_errors(batch, pa.array(new_errors, pa.string()))

    def _sketch_texts(self, texts: pa.Array, rows: list[int], out: dict[str, list[Any]]) -> None:
        sketch = self.sketcher.sketch(texts)
        offsets = sketch.shingle_offsets
        for i, row in enumerate(rows):
            out["text_exact_hi"][row], out["text_exact_lo"][row] = int(sketch.exact[i, 0]), int(sketch.exact[i, 1])
            out["text_length"][row] = int(sketch.lengths[i])
            out["signature"][row] = sketch.signatures[i].astype("<u4").tobytes()
            if self.keep_shingles:
                out["shingles"][row] = sketch.shingles[offsets[i] : offsets[i + 1]].astype("<u4").tobytes()

    def _sketch_media(self, modality: str, media: list[dict[str, Any]], record_id: str) -> tuple[list, str | None]:
        """Items of one record; the error of its primary item, if it failed."""
        items, failure = [], None
        for index, item in enumerate(media):
            primary = modality in (S.Modality.IMAGE.value, S.Modality.VIDEO.value) and index == 0
            wanted = self.images if item["kind"] == "image" else self.videos
            if not wanted or (modality in (S.Modality.IMAGE.value, S.Modality.VIDEO.value) and index > 0):
                continue
            entry = {
                "index": index,
                "kind": item["kind"],
                "primary": primary,
                "exact_hi": None,
                "exact_lo": None,
                "hashes": None,
                "thumbs": None,
                "size": None,
                "error": None,
            }
            try:
                entry.update(self._image(item) if item["kind"] == "image" else self._video(item))
            except (BadMedia, OSError) as exc:
                reason = getattr(exc, "reason", "unreadable_media")
                if self.strict:
                    raise BadRecord(f"{reason}: {exc}", where=record_id) from exc
                entry["error"] = f"dedupe:{reason}: {exc}"
                failure = entry["error"] if primary else failure
            items.append(entry)
        return items, failure

    def _image(self, item: dict[str, Any]) -> dict[str, Any]:
        data = item["bytes"] if item.get("bytes") is not None else read_range(item["uri"], item["offset"], item["size"])
        image = decode_image(data, self.max_pixels)
        hi, lo = pixel_key(image)
        hashes = image_hashes(image, self.image_hash, self.crop_fraction)
        thumbs = color_thumbnails(image, self.crop_fraction)
        return {
            "exact_hi": hi,
            "exact_lo": lo,
            "hashes": hashes.astype("<u8").tobytes(),
            "thumbs": thumbs.tobytes(),
            "size": float(image.size[0] * image.size[1]),
        }

    def _video(self, item: dict[str, Any]) -> dict[str, Any]:
        url = ffmpeg_url(item["uri"], item["offset"], item["size"])
        hi, lo = stream_key(url, self.timeout_s)
        hashes = frame_hashes(url, self.video_fps, self.video_max_frames, self.timeout_s)
        duration = item.get("duration_s") or len(hashes) / self.video_fps
        return {
            "exact_hi": hi,
            "exact_lo": lo,
            "hashes": np.asarray(hashes).astype("<u8").tobytes(),
            "size": float(duration),
        }
