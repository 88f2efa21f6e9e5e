import numpy as np
import pytest

from fusionforge.filters.safety.text_share import SafetyTextShare, text_boxes, union_share
from fusionforge.pipelines.core import schema as S

STAGE = "safety_text_share_v1"


@pytest.fixture(scope="module")
def stage():
    return SafetyTextShare()


def test_drawn_text_is_found_and_plain_pictures_have_none(stage, pictures, make_batch, make_record):
    rows = [
        make_record("t/5", "text", "image", [pictures.item(pictures.text(5))]),
        make_record("t/2", "text", "image", [pictures.item(pictures.text(2), "JPEG")]),
    ]
    rows += [make_record(f"p/{i}", "plain", "image", [pictures.item(im)]) for i, im in enumerate(pictures.plain())]
    out = stage(make_batch(rows))
    shares = out.column(S.stage_column(STAGE, "text_share")).to_pylist()
    boxes = out.column(S.stage_column(STAGE, "text_boxes")).to_pylist()
    assert boxes[:2] == [5, 2]  # one box per printed line
    assert shares[0] > shares[1] > 0.05 and shares[0] < 0.6
    assert shares[2:] == [0.0] * 4 and boxes[2:] == [0] * 4


def test_the_share_is_the_union_of_rapidocr_boxes_over_the_area(stage, pictures):
    """Against RapidOCR's own call on the encoded image (detection and recognition) and Shapely's polygon union."""
    from rapidocr_onnxruntime import RapidOCR
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    image = pictures.text(4)
    rgb = np.asarray(image)
    ours = text_boxes(stage.detector, rgb)
    found, _ = RapidOCR(det_limit_side_len=960, det_limit_type="max")(pictures.encode(image))
    reference = [box for box, text, _ in found if "quick brown fox" in text]
    assert len(reference) == len(found) == 4
    assert np.allclose(sorted(b.tolist() for b in ours), sorted(reference), atol=1)
    exact = unary_union([Polygon(box) for box in reference]).area / (image.width * image.height)
    assert union_share(ours, image.height, image.width) == pytest.approx(exact, rel=0.02)


def test_limits_drop_text_heavy_pictures_or_keep_only_documents(pictures, make_batch, make_record):
    rows = [
        make_record("t/0", "text", "image", [pictures.item(pictures.text(5))]),
        make_record("p/0", "plain", "image", [pictures.item(pictures.plain()[1])]),
    ]
    heavy = SafetyTextShare(max_text_share=0.05)(make_batch(rows))
    assert heavy.column(S.DROP_REASON).to_pylist() == [f"{STAGE}:text_heavy", None]
    documents = SafetyTextShare(min_text_share=0.05)(make_batch(rows))
    assert documents.column(S.DROP_REASON).to_pylist() == [None, f"{STAGE}:little_text"]
    with pytest.raises(ValueError, match="above max_text_share"):
        SafetyTextShare.check(max_text_share=0.1, min_text_share=0.2)
    with pytest.raises(ValueError, match="max_text_share"):
        SafetyTextShare.check(max_text_share=1.5)


def test_detection_alone_takes_drawn_shapes_for_text_and_recognition_rejects_them(stage, pictures):
    shapes = np.asarray(pictures.plain()[3])
    assert text_boxes(stage.detector, shapes, verify=False)  # the detector proposes a box ...
    assert text_boxes(stage.detector, shapes) == []  # ... that holds nothing readable


def test_union_share_counts_overlaps_once_and_stays_inside_the_picture():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=float)
    assert union_share([square, square + [5, 0]], 20, 20) == pytest.approx(150 / 400)
    assert union_share([square - [5, 5]], 20, 20) == pytest.approx(25 / 400)  # a box past the edge is cut
    assert union_share([], 20, 20) == 0.0
