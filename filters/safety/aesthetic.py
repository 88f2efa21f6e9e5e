"""Aesthetic (or watermark) score of images and video keyframes: a local head over CLIP embeddings.

The user brings both files: CLIP weights (loaded as for ``image_clip_score_v1``, ``clip_model.py``)
and the head (``linear_head.py``; LAION's aesthetic predictors take ViT-L/14 embeddings, hence the
default model). A picture's score is the head's output on its L2-normalised image embedding, as
LAION computes it; a record's ``score`` is the mean over its pictures. Kept by ``threshold`` or
``top_fraction`` (higher is better, ``filters/policy.py``), reason ``low_score``.

Defaults: ``model`` ViT-L-14, ``head`` and ``pretrained`` required, ``device`` auto, 8 keyframes per
video at most 336 px, no threshold (score only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from PIL import Image

from fusionforge.filters.image.clip_model import ClipPolicy, ClipScorer
from fusionforge.filters.safety.base import PictureStage
from fusionforge.filters.safety.linear_head import LinearHead
from fusionforge.filters.safety.pictures import Picture
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources


@register
class SafetyAesthetic(ClipPolicy, PictureStage):
    """``safety_aesthetic_v1``: a local score head over CLIP image embeddings (see the module docstring)."""

    name: ClassVar[str] = "safety_aesthetic_v1"
    resources: ClassVar[Resources] = Resources(batch_size=32)
    fields: ClassVar[dict[str, pa.DataType]] = {"score": pa.float64()}
    scores = None  # a head's output has no fixed range

    def __init__(
        self,
        head: str | None = None,
        model: str = "ViT-L-14",
        pretrained: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
        threshold: float | None = None,
        top_fraction: float | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_keyframes: int = 8,
        keyframe_side: int = 336,
        timeout_s: float = 300.0,
        resolved_threshold: float | None = None,
        reuse_scores: bool = False,
    ) -> None:
        self.check(head=head, model=model, pretrained=pretrained, threshold=threshold, top_fraction=top_fraction)
        self.init_policy(threshold, top_fraction, resolved_threshold, reuse_scores)
        self.init_pictures(max_pixels, max_keyframes, keyframe_side, timeout_s)
        self.head = None if reuse_scores else LinearHead(head)
        self.scorer = None if reuse_scores else ClipScorer(model, pretrained, device, precision)

    @classmethod
    def check(
        cls, head: str | None = None, model: str = "ViT-L-14", pretrained: str | None = None, **params: Any
    ) -> None:
        """Cheap checks before a run (building the stage loads CLIP and the head)."""
        super().check(model=model, pretrained=pretrained, **params)
        if not head:
            raise ConfigError(f"{cls.name} needs head: a local score-head checkpoint (e.g. LAION's aesthetic MLP)")
        if not Path(head).is_file():
            raise ConfigError(f"{cls.name}: score head {head} does not exist")

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        return self.stored_scores(batch) if self.reuse_scores else super().score(batch)

    def judge(self, pictures: list[Picture]) -> dict[str, Any]:
        embeddings = self.scorer.image_features([Image.fromarray(p.rgb) for p in pictures])
        return {"score": float(np.mean(self.head(embeddings)))}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return self.policy_reasons(scores["score"].to_numpy(zero_copy_only=False))
