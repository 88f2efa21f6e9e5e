"""The ``bbox`` verifier: predicted boxes match the ground truth at IoU >= a threshold.

Coordinate conventions are explicit, because VLMs disagree: Qwen2-VL answers in a 0-1000 grid,
Qwen2.5-VL in absolute pixels of the image *it was given* (after its own resize). Boxes are
``[x1, y1, x2, y2]`` (top-left, bottom-right; x to the right, y down), in one of:

- ``pixel``: absolute pixels of an image of size ``[width, height]``;
- ``norm1000``: integers 0-1000 relative to the image's width and height.

Options (a prompt's ``verify`` field): ``iou`` (threshold, default 0.5), ``answer_convention``
(default ``pixel``), ``response_convention`` (default: the answer's), ``image_size`` ``[w, h]`` of
the original image (filled from the prompt's single image when absent), ``response_image_size``
(the frame of pixel answers when the model saw a resized image; default ``image_size``). Both
sides are mapped to the 0-1000 grid before comparing. With several ground-truth boxes, each must be
matched by its own predicted box (greedy by IoU) and no predicted box may be left over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fusionforge.rft.extract import extract_boxes
from fusionforge.rft.verdict import FAIL, Verdict, no_answer, passed

CONVENTIONS = ("pixel", "norm1000")


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes (continuous coordinates)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, width) * max(0.0, height)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def to_norm1000(box: Sequence[float], convention: str, size: Sequence[float] | None) -> list[float]:
    """A box in ``convention`` mapped onto the 0-1000 grid (``size`` = ``[w, h]`` for pixel boxes)."""
    if convention == "norm1000":
        return [float(v) for v in box]
    if convention != "pixel":
        raise ValueError(f"unknown box convention {convention!r}; use one of {CONVENTIONS}")
    if not size or len(size) != 2 or min(size) <= 0:
        raise ValueError("pixel boxes need image_size [width, height] to be compared in another frame")
    w, h = float(size[0]), float(size[1])
    return [box[0] * 1000 / w, box[1] * 1000 / h, box[2] * 1000 / w, box[3] * 1000 / h]


def _gold_boxes(answer: Any) -> tuple[list[list[float]], Mapping[str, Any]]:
    extra: Mapping[str, Any] = {}
    if isinstance(answer, Mapping):
        extra = answer
        answer = answer.get("boxes", answer.get("box"))
    if isinstance(answer, Sequence) and len(answer) == 4 and all(isinstance(v, (int, float)) for v in answer):
        answer = [answer]
    if (
        not isinstance(answer, Sequence)
        or not answer
        or not all(isinstance(b, Sequence) and len(b) == 4 for b in answer)
    ):
        raise ValueError(f"the ground-truth box {answer!r} is not [x1, y1, x2, y2] or a list of them")
    boxes = [[float(v) for v in box] for box in answer]
    for box in boxes:
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"the ground-truth box {box} is degenerate or inverted (need x2 > x1 and y2 > y1)")
    return boxes, extra


def verify_bbox(response: str, answer: Any, options: Mapping[str, Any]) -> Verdict:
    """Pass when every ground-truth box has its own predicted box with IoU >= ``iou``."""
    golds, extra = _gold_boxes(answer)
    options = {**{k: v for k, v in extra.items() if k not in ("box", "boxes")}, **options}
    threshold = float(options.get("iou", 0.5))
    gold_convention = options.get("answer_convention", "pixel")
    pred_convention = options.get("response_convention", gold_convention)
    size = options.get("image_size")
    pred_size = options.get("response_image_size", size)
    preds = extract_boxes(response)
    if not preds:
        return no_answer("no box [x1, y1, x2, y2] found")
    shown = "; ".join(str([round(v, 2) for v in box]) for box in preds)
    for box in preds:
        if box[2] <= box[0] or box[3] <= box[1]:
            return Verdict(FAIL, shown, f"degenerate or inverted box {box} (need x2 > x1 and y2 > y1)")
        if pred_convention == "norm1000" and (min(box) < 0 or max(box) > 1000):
            return Verdict(FAIL, shown, f"box {box} is outside the 0-1000 grid")
    if len(preds) != len(golds):
        return Verdict(FAIL, shown, f"expected {len(golds)} box(es), got {len(preds)}")
    same_frame = gold_convention == pred_convention and (pred_convention == "norm1000" or pred_size == size)
    if not same_frame:
        golds = [to_norm1000(b, gold_convention, size) for b in golds]
        preds = [to_norm1000(b, pred_convention, pred_size) for b in preds]
    scores = _greedy_match(golds, preds)
    worst = min(scores)
    return passed(shown, worst >= threshold, f"IoU {worst:.3f} < {threshold:g}")


def _greedy_match(golds: list[list[float]], preds: list[list[float]]) -> list[float]:
    """IoU of each gold box with the predicted box it is paired to (pairs taken best-first)."""
    pairs = sorted(((iou(g, p), gi, pi) for gi, g in enumerate(golds) for pi, p in enumerate(preds)), reverse=True)
    used_gold, used_pred, scores = set(), set(), []
    for score, gi, pi in pairs:
        if gi not in used_gold and pi not in used_pred:
            used_gold.add(gi)
            used_pred.add(pi)
            scores.append(score)
    return scores
