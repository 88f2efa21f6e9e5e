"""``dedupe_embed_v1``: one unit-norm embedding per record, of its primary item, for semantic dedup.

The primary item is the one today's dedup decides a record by: the text of a text or interleaved
record, the image of an image-text pair, the video of a video record (the normalised mean of up to
``max_keyframes`` keyframes spread over it). Text goes through ``text_model`` (a local model2vec
folder, or ``clip`` for CLIP's text tower), images and keyframes through CLIP from a local
checkpoint. Each kind is embedded only when asked (``text``, ``images``, ``videos``) and its model is
given. A record with nothing to embed (an empty text, a kind not compared) gets a null space and is
kept as it is; a primary image or video that cannot be read fails the record with the reason.

Defaults: ``clip_model="ViT-B-32"``, ``device="auto"``, ``max_keyframes=4``, ``micro_batch=16``,
``timeout_s=60``. Columns added (``dedupe_embed_v1__{field}``): ``space`` (0 text, 1 image, 2 video),
``embedding`` (float32 bytes), ``length`` (characters, pixels or seconds), ``exact_hi``/``exact_lo``
(xxh3-128 of the text's UTF-8 bytes or of the decoded pixels; null for videos).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import xxhash
from PIL import Image

from fusionforge.filters.dedup.embedders import CLIP_TEXT, ClipEmbedder, StaticTextEmbedder
from fusionforge.filters.dedup.image_hash import pixel_key
from fusionforge.filters.dedup.sketch import TEXT_MODALITIES
from fusionforge.filters.media import item_bytes, video_url
from fusionforge.filters.video.clip_score import spread
from fusionforge.filters.video.common import video_facts
from fusionforge.filters.video.decode import decode_frames
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadMedia, BadRecord
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS, decode_image
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, Stage, add_errors, set_column

NAME = "dedupe_embed_v1"
TEXT, IMAGE, VIDEO = 0, 1, 2  # the spaces of the dedupe store (pipelines/dedupe/store.py)
COLUMNS = {
    "space": pa.int8(),
    "embedding": pa.binary(),
    "length": pa.float64(),
    "exact_hi": pa.uint64(),
    "exact_lo": pa.uint64(),
}


def column(field: str) -> str:
    return S.stage_column(NAME, field)


@register
class DedupeEmbed(Stage):
    """Embeds each record's primary item (see the module docstring); never removes a row."""

    name: ClassVar[str] = NAME
    resources: ClassVar[Resources] = Resources(batch_size=64)
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        text_model: str | None = None,
        images: bool = False,
        videos: bool = False,
        clip_model: str = "ViT-B-32",
        clip_pretrained: str | None = None,
        device: str = "auto",
        max_keyframes: int = 4,
        micro_batch: int = 16,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        timeout_s: float = 60.0,
        strict: bool = False,
        drop_inputs: bool = False,
    ) -> None:
        needs_clip = images or videos or text_model == CLIP_TEXT
        self.clip = ClipEmbedder(clip_model, clip_pretrained, device, micro_batch) if needs_clip else None
        self.text_model = text_model
        self.static = StaticTextEmbedder(text_model) if text_model not in (None, CLIP_TEXT) else None
        self.images, self.videos = images, videos
        self.max_keyframes, self.max_pixels, self.timeout_s = max_keyframes, max_pixels, timeout_s
        self.strict, self.drop_inputs = strict, drop_inputs

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        modalities = batch.column(S.MODALITY).to_pylist()
        errors = batch.column(S.ERROR).to_pylist()
        ids = batch.column(S.ID).to_pylist()
        out: dict[str, list[Any]] = {f: [None] * n for f in COLUMNS}
        vectors: list[np.ndarray | None] = [None] * n
        new_errors: list[str | None] = [None] * n
        texts = batch.column(S.TEXT).to_pylist()
        text_rows = [
            r
            for r in range(n)
            if self.text_model and modalities[r] in TEXT_MODALITIES and errors[r] is None and texts[r]
        ]
        for r, vector in zip(text_rows, self._texts([texts[r] for r in text_rows])):
            digest = xxhash.xxh3_128_intdigest(texts[r].encode("utf-8"))
            self._put(out, vectors, r, TEXT, vector, len(texts[r]), digest)
        images: list[tuple[int, Image.Image]] = []
        for r, media in enumerate(batch.column(S.MEDIA).to_pylist()):
            primary = media[0] if media else None
            if errors[r] is not None or primary is None or modalities[r] not in (S.Modality.IMAGE, S.Modality.VIDEO):
                continue
            try:
                if modalities[r] == S.Modality.IMAGE and self.images:
                    image = decode_image(item_bytes(primary), self.max_pixels)
                    images.append((r, image))
                elif modalities[r] == S.Modality.VIDEO and self.videos:
                    vector, seconds = self._video(primary)
                    self._put(out, vectors, r, VIDEO, vector, seconds, None)
            except (BadMedia, OSError) as exc:
                reason = getattr(exc, "reason", "unreadable_media")
                if self.strict:
                    raise BadRecord(f"{reason}: {exc}", where=ids[r]) from exc
                new_errors[r] = f"dedupe:{reason}: {exc}"
        if images:
            for (r, image), vector in zip(images, self.clip.images([image for _, image in images])):
                hi, lo = pixel_key(image)
                self._put(out, vectors, r, IMAGE, vector, float(image.size[0] * image.size[1]), (hi << 64) | lo)
        for field, values in out.items():
            batch = set_column(batch, column(field), pa.array(values, COLUMNS[field]))
        if self.drop_inputs:
            batch = batch.drop_columns([c for c in (S.TEXT, S.SEGMENTS, S.MEDIA, S.META) if c in batch.column_names])
        return add_errors(batch, pa.array(new_errors, pa.string()))

    def _texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, 0), np.float32)
        return self.static(texts) if self.static is not None else self.clip.texts(texts)

    def _video(self, item: dict[str, Any]) -> tuple[np.ndarray | None, float]:
        facts = video_facts(item, self.timeout_s)
        with video_url(item) as url:
            frames = decode_frames(
                url, facts.width, facts.height, max_side=336, keyframes_only=True, timeout_s=self.timeout_s
            ).pixels
        if len(frames) == 0:
            raise BadMedia("corrupt_video", "no keyframe could be decoded")
        chosen = [Image.fromarray(frames[i]) for i in spread(len(frames), self.max_keyframes)]
        mean = self.clip.images(chosen).mean(axis=0)
        return mean, float(facts.duration_s or 0.0)

    @staticmethod
    def _put(out, vectors, row, space, vector, length, digest) -> None:
        norm = float(np.linalg.norm(vector)) if vector is not None else 0.0
        if norm == 0.0:  # no token the model knows: nothing to compare, the record is kept
            return
        out["space"][row] = space
        out["embedding"][row] = (np.asarray(vector, np.float32) / norm).astype("<f4").tobytes()
        out["length"][row] = float(length)
        if digest is not None:
            out["exact_hi"][row], out["exact_lo"][row] = digest >> 64, digest & (2**64 - 1)
