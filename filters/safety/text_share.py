"""Share of images and video keyframes covered by text, from RapidOCR's detector (bundled in its wheel).

The detector (PP-OCRv4 det) proposes boxes; with ``verify`` (the default) each box is read by the
recognition model and kept only when RapidOCR's own text-score filter passes it (0.5). Detection
alone is not enough: on flat drawn shapes and cartoon faces it proposes boxes holding no text
(measured: a red square and a blue disc came out as 53% text), which recognition rejects. A picture's
share is the union of the text boxes over its area, a record's ``text_share`` its most text-covered
picture's, with ``text_boxes`` the boxes of all its pictures. Two uses, two limits:
``max_text_share`` drops screenshots and slides of text (reason ``text_heavy``), ``min_text_share``
keeps only document images (reason ``little_text``).

Defaults: ``det_side`` 960 (a picture is scaled down so its longer side is at most this, never up;
RapidOCR's own default brings the shorter side *up* to 736 px, several times the pixels and the time
for an area share), ``verify`` on, RapidOCR's box threshold and text score 0.5, ``threads`` 1
(onnxruntime threads per actor), both limits None (score only), 8 keyframes per video at most 640 px.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from fusionforge.filters.safety.base import PictureStage, first_reason, over_limit, require_bounds, under_limit
from fusionforge.filters.safety.pictures import Picture
from fusionforge.pipelines.core.bounds import COUNT, FRACTION
from fusionforge.pipelines.core.errors import MissingDependency
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources


def load_detector(det_side: int, threads: int) -> Any:
    """RapidOCR with its bundled models, detecting on pictures of at most ``det_side`` px, on ``threads`` threads."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise MissingDependency("rapidocr_onnxruntime", "safety") from exc
    return RapidOCR(
        det_limit_side_len=det_side, det_limit_type="max", intra_op_num_threads=threads, inter_op_num_threads=1
    )


def text_boxes(detector: Any, rgb: np.ndarray, verify: bool = True) -> list[np.ndarray]:
    """Text boxes (4 x 2 corner points, in the picture's pixels): detected, and read back when ``verify``."""
    found, _ = detector(np.ascontiguousarray(rgb[:, :, ::-1]), use_det=True, use_cls=False, use_rec=verify)
    return [np.asarray(entry[0] if verify else entry, dtype=np.float64) for entry in found or []]


def union_share(boxes: list[np.ndarray], height: int, width: int) -> float:
    """The share of the picture that the union of the box quadrilaterals covers (exact, with Shapely).

    A mask drawn with ``cv2.fillPoly`` counts the edge pixels of every box: 4% too much on 40 px lines.
    """
    from shapely.geometry import Polygon, box
    from shapely.ops import unary_union

    if not boxes or height <= 0 or width <= 0:
        return 0.0
    union = unary_union([Polygon(quad).convex_hull for quad in boxes]).intersection(box(0, 0, width, height))
    return float(union.area / (height * width))


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
        verify: bool = True,
        threads: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_keyframes: int = 8,
        keyframe_side: int = 640,
        timeout_s: float = 300.0,
    ) -> None:
        self.check(max_text_share=max_text_share, min_text_share=min_text_share, det_side=det_side, threads=threads)
        self.init_pictures(max_pixels, max_keyframes, keyframe_side, timeout_s)
        self.max_text_share, self.min_text_share, self.verify = max_text_share, min_text_share, verify
        self.detector = load_detector(det_side, threads)

    @classmethod
    def check(
        cls,
        max_text_share: float | None = None,
        min_text_share: float | None = None,
        det_side: int = 960,
        threads: int = 1,
        **_: object,
    ) -> None:
        """Cheap checks before a run (building the stage loads the model)."""
        require_bounds(
            cls.name,
            det_side=(det_side, COUNT),
            threads=(threads, COUNT),
            max_text_share=(max_text_share, FRACTION),
            min_text_share=(min_text_share, FRACTION),
        )
        if max_text_share is not None and min_text_share is not None and min_text_share > max_text_share:
            raise ValueError(f"{cls.name}: min_text_share {min_text_share} is above max_text_share {max_text_share}")

    def judge(self, pictures: list[Picture]) -> dict[str, Any]:
        found = [text_boxes(self.detector, p.rgb, self.verify) for p in pictures]
        shares = [union_share(boxes, *p.rgb.shape[:2]) for boxes, p in zip(found, pictures)]
        return {"text_share": max(shares), "text_boxes": sum(len(boxes) for boxes in found)}

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return first_reason(
            over_limit(scores["text_share"], self.max_text_share, "text_heavy"),
            under_limit(scores["text_share"], self.min_text_share, "little_text"),
        )
