"""CLIP image-text score of image-text pairs, kept by a DataComp-style policy.

The model loads once per Ray actor (``stateful``) on ``device`` ("auto": the GPU when Ray gave the
actor one, else the CPU; ask for GPUs with ``num_gpus`` in the stage's ``resources``). A batch is
scored in one forward pass per tower. ``score`` is the cosine similarity of the image and caption
embeddings; keep by ``threshold`` (DataComp: 0.28 for ViT-B/32, 0.3 for ViT-L/14) or ``top_fraction``
(DataComp's best baseline keeps the top 30%). Images decode through the shared bounded decoder
(``pipelines/core/images.py``: the pixel count is checked from the header against ``max_pixels``
before any pixel is decoded). An image that will not decode, or is too big to, is an error on the
row (its ``BadMedia`` reason), not a score.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from fusionforge.filters.image.clip_model import ClipPolicy, ClipScorer, check_clip_args
from fusionforge.filters.media import first_of_kind, item_bytes
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadMedia, media_error
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS, decode_image
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, ScoringStage


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """A decoded RGB image, through the bounded decoder (raises ``BadMedia`` with a short reason)."""
    return decode_image(data, max_pixels).convert("RGB")


@register
class ImageClipScore(ClipPolicy, ScoringStage):
    """``image_clip_score_v1``: CLIP similarity of each image-text pair's image and caption."""

    name: ClassVar[str] = "image_clip_score_v1"
    resources: ClassVar[Resources] = Resources(batch_size=64)
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
        threshold: float | None = None,
        top_fraction: float | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        resolved_threshold: float | None = None,
        reuse_scores: bool = False,
    ) -> None:
        self.init_policy(threshold, top_fraction, resolved_threshold, reuse_scores)
        self.model_name = model
        self.max_pixels = max_pixels
        check_clip_args(model, pretrained)
        self.scorer = None if reuse_scores else ClipScorer(model, pretrained, device, precision)

    def applies(self, batch: pa.Table) -> pa.Array:
        return pc.equal(batch.column(S.MODALITY), S.Modality.IMAGE.value)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if self.reuse_scores:
            return self.stored_scores(batch)
        images, texts, rows = [], [], []
        errors: list[str | None] = [None] * batch.num_rows
        captions = batch.column(S.TEXT).to_pylist()
        for row, media in enumerate(batch.column(S.MEDIA).to_pylist()):
            item = first_of_kind(media, "image")
            if item is None:
                errors[row] = "no_image: an image record without an image item"
                continue
            try:
                images.append(open_image(item_bytes(item), self.max_pixels))
            except (BadMedia, OSError) as exc:
                errors[row] = media_error(exc)
                continue
            texts.append(captions[row] or "")
            rows.append(row)
        scores = np.full(batch.num_rows, np.nan)
        scores[rows] = self.scorer.similarity(images, texts)
        return {"score": pa.array(scores, pa.float64(), mask=np.isnan(scores)), "error": pa.array(errors, pa.string())}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return self.policy_reasons(scores["score"].to_numpy(zero_copy_only=False))
