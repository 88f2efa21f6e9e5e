"""Share of images and video keyframes covered by text, from RapidOCR's detector (bundled in its wheel).

Only the detection model runs (PP-OCRv4 det, no recognition: boxes are enough for an area share);
a picture's share is the union of the text boxes over its area, and a record's ``text_share`` is its
most text-covered picture's, with ``text_boxes`` the boxes of all its pictures. Two uses, two limits:
``max_text_share`` drops screenshots and slides of text (reason ``text_heavy``), ``min_text_share``
keeps only document images (reason ``little_text``).

Defaults: ``det_side`` 960 (a picture is scaled down so its longer side is at most this, never up;
RapidOCR's own default brings the shorter side *up* to 736 px, several times the pixels and the time
for an area share), RapidOCR's box threshold 0.5, both limits None (score only), 8 keyframes per video
at most 640 px.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from fusionforge.filters.safety.base import PictureStage, first_reason, over_limit, under_limit
from fusionforge.filters.safety.pictures import Picture
from fusionforge.pipelines.core.bounds import COUNT, FRACTION
from fusionforge.pipelines.core.errors import MissingDependency
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources

MASK_SIDE = 512  # the union of boxes is measured on a mask at most this size


def load_detector(det_side: int) -> Any:
    """RapidOCR with its bundled models, detecting on pictures of at most ``det_side`` px (only its detector runs)."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise MissingDependency("rapidocr_onnxruntime", "safety") from exc
    return RapidOCR(det_limit_side_len=det_side, det_limit_type="max")


def text_boxes(detector: Any, rgb: np.ndarray) -> list[np.ndarray]:
    """Text boxes (4 x 2 corner points, in the picture's pixels) that RapidOCR's detector finds."""
    boxes, _ = detector(np.ascontiguousarray(rgb[:, :, ::-1]), use_det=True, use_cls=False, use_rec=False)
    return [np.asarray(box, dtype=np.float64) for box in boxes or []]


def union_share(boxes: list[np.ndarray], height: int, width: int) -> float:
    """The share of the picture the union of the quadrilaterals covers (measured on a small mask)."""
    import cv2

    if not boxes or height <= 0 or width <= 0:
        return 0.0
    scale = min(1.0, MASK_SIDE / max(height, width))
    mask = np.zeros((max(1, round(height * scale)), max(1, round(width * scale))), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(box * scale).astype(np.int32) for box in boxes], 1)
    return float(mask.mean())


@register
class SafetyTextShare(PictureStage):
    """``safety_text_share_v1``: the share of a record's pictures covered by text (see the module docstring)."""

    name: ClassVar[str] = "safety_text_share_v1"
    resources: ClassVar[Resources] = Resources(batch_size=32)
    fields: ClassVar[dict[str, pa.DataType]] = {"text_share": pa.float64(), "text_boxes": pa.int64()}

    def __init__(
        self,
        max_text_share: float | None = None,
        min_text_share: float | None = None,
        det_side: int = 960,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_keyframes: int = 8,
        keyframe_side: int = 640,
        timeout_s: float = 300.0,
    ) -> None:
        self.check(max_text_share=max_text_share, min_text_share=min_text_share, det_side=det_side)
        self.init_pictures(max_pixels, max_keyframes, keyframe_side, timeout_s)
        self.max_text_share, self.min_text_share = max_text_share, min_text_share
        self.detector = load_detector(det_side)

    @classmethod
    def check(
        cls, max_text_share: float | None = None, min_text_share: float | None = None, det_side: int = 960, **_: object
    ) -> None:
        """Cheap checks before a run (building the stage loads the model)."""
        COUNT.require(f"{cls.name}: det_side", det_side, ValueError)
        FRACTION.require(f"{cls.name}: max_text_share", max_text_share, ValueError)
        FRACTION.require(f"{cls.name}: min_text_share", min_text_share, ValueError)
        if max_text_share is not None and min_text_share is not None and min_text_share > max_text_share:
            raise ValueError(f"{cls.name}: min_text_share {min_text_share} is above max_text_share {max_text_share}")

    def judge(self, pictures: list[Picture]) -> dict[str, Any]:
        found = [text_boxes(self.detector, p.rgb) for p in pictures]
        shares = [union_share(boxes, *p.rgb.shape[:2]) for boxes, p in zip(found, pictures)]
        return {"text_share": max(shares), "text_boxes": sum(len(boxes) for boxes in found)}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return first_reason(
            over_limit(scores["text_share"], self.max_text_share, "text_heavy"),
            under_limit(scores["text_share"], self.min_text_share, "little_text"),
        )
