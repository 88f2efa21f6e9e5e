import io

import pytest
from PIL import Image

from fusionforge.filters.image.checks import ImageChecks
from fusionforge.pipelines.core import schema as S


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _item(data: bytes, width: int | None = None, height: int | None = None) -> dict:
    return {
        "kind": "image",
        "uri": None,
        "offset": None,
        "size": len(data),
        "bytes": data,
        "sha256": None,
        "format": "png",
        "width": width,
        "height": height,
    }


def _pair(make_record, rid, data, width, height):
    return make_record(rid, "a caption", modality="image", media=[_item(data, width, height)])


@pytest.fixture
def judged(make_batch, make_record):
    good = _png(200, 150)
    rows = [
        _pair(make_record, "i/good", good, 200, 150),
        _pair(make_record, "i/tiny", _png(20, 30), 20, 30),
        _pair(make_record, "i/wide", _png(400, 100), 400, 100),
        _pair(make_record, "i/broken", good[: len(good) // 2], 200, 150),
        _pair(make_record, "i/noise", b"\x00not an image at all" * 50, 200, 150),
        make_record(
            "i/doc",
            "text and two images",
            modality="interleaved",
            media=[_item(good, 200, 150), _item(_png(64, 20), 64, 20)],
        ),
        make_record("i/text", "no images here"),
    ]
    return make_batch(rows)


def test_each_check_gives_its_reason_and_worst_image_decides(judged):
    out = ImageChecks()(judged)
    reasons = dict(zip(out.column(S.ID).to_pylist(), out.column(S.DROP_REASON).to_pylist()))
    assert reasons == {
        "i/good": None,
        "i/tiny": "image_checks_v1:too_small",
        "i/wide": "image_checks_v1:aspect_ratio",
        "i/broken": "image_checks_v1:undecodable_image",
        "i/noise": "image_checks_v1:undecodable_image",
        "i/doc": "image_checks_v1:too_small",
        "i/text": None,
    }
    assert out.column("image_checks_v1__images").to_pylist() == [1, 1, 1, 1, 1, 2, None]
    assert out.column("image_checks_v1__max_aspect_ratio").to_pylist()[:3] == [pytest.approx(4 / 3), 1.5, 4.0]
    assert out.column("image_checks_v1__min_side").to_pylist()[5] == 20


def test_limits_are_parameters_and_the_pixel_guard_runs_before_decoding(judged):
    out = ImageChecks(min_side=10, max_aspect_ratio=None, min_bytes=100, max_side=300, decode=False)(judged)
    reasons = dict(zip(out.column(S.ID).to_pylist(), out.column(S.DROP_REASON).to_pylist()))
    assert reasons["i/tiny"] == "image_checks_v1:too_few_bytes"
    assert reasons["i/wide"] == "image_checks_v1:too_large"
    assert reasons["i/broken"] is None  # decode off: only the stored facts are judged (233 bytes, 200 x 150)
    guarded = ImageChecks(max_pixels=25_000)(judged)
    reasons = dict(zip(guarded.column(S.ID).to_pylist(), guarded.column(S.DROP_REASON).to_pylist()))
    assert reasons["i/good"] == "image_checks_v1:too_many_pixels"  # 200 x 150 > 25,000 pixels


def test_unreadable_media_is_an_error_not_a_decision(make_batch, make_record, tmp_path):
    item = {**_item(b""), "bytes": None, "uri": str(tmp_path / "gone.png"), "size": 10, "width": 100, "height": 100}
    out = ImageChecks()(make_batch([make_record("i/gone", "x", modality="image", media=[item])]))
    assert out.column(S.DROP_REASON).to_pylist() == [None]
    assert out.column(S.ERROR)[0].as_py().startswith("image_checks_v1:unreadable_media:")
    with pytest.raises(ValueError, match="max_aspect_ratio"):
        ImageChecks(max_aspect_ratio=0.5)


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"max_bytes": 100_000}, None),
        ({"max_bytes": 1_000}, "image_checks_v1:too_many_bytes"),
        ({"min_bytes": 1_000}, None),
        ({"min_bytes": 100_000}, "image_checks_v1:too_few_bytes"),
    ],
)
def test_byte_size_limits_keep_or_drop(make_batch, make_record, limits, reason):
    noisy = Image.effect_noise((64, 64), 80).convert("RGB")  # noise does not compress: about 12 KB as PNG
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    data = buffer.getvalue()
    assert 1_000 < len(data) < 100_000
    for decode in (True, False):
        out = ImageChecks(**limits, decode=decode)(make_batch([_pair(make_record, "i/noisy", data, 64, 64)]))
        assert out.column(S.DROP_REASON).to_pylist() == [reason]
        assert out.column("image_checks_v1__max_bytes").to_pylist() == [len(data)]
