import io

import numpy as np
import pytest
from PIL import Image

from fusionforge.filters.image.clip_model import ClipScorer
from fusionforge.filters.image.clip_score import ImageClipScore
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError


def _png(color: tuple[int, int, int], size=(90, 70)) -> bytes:
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 7):
        image.putpixel((x, x % size[1]), (255 - color[0], 10, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _pairs(make_record, n=6):
    colors = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (20, 20, 20), (240, 240, 240)]
    rows = []
    for i in range(n):
        data = _png(colors[i % len(colors)])
        item = {"kind": "image", "uri": None, "offset": None, "size": len(data), "bytes": data, "format": "png"}
        rows.append(make_record(f"p/{i}", f"a photo of thing number {i}", modality="image", media=[item]))
    return rows


def test_weights_load_through_pretrained_path_in_both_formats(tiny_clip):
    import open_clip
    import torch

    text = open_clip.get_tokenizer("ff-tiny-clip")(["a red square"])
    with torch.no_grad():
        expected = tiny_clip["model"].encode_text(text)
    for weights in (tiny_clip["pt"], tiny_clip["st"]):
        scorer = ClipScorer(tiny_clip["config"], weights, device="cpu")
        got = scorer.text_features(["a red square"])
        assert np.allclose(got, torch.nn.functional.normalize(expected, dim=-1).numpy(), atol=1e-6)


def test_batch_scores_equal_one_by_one_scores(tiny_clip, make_batch, make_record):
    stage = ImageClipScore(model=tiny_clip["config"], pretrained=tiny_clip["st"], device="cpu")
    rows = _pairs(make_record) + [make_record("t/0", "plain text")]
    batch_scores = stage(make_batch(rows)).column("image_clip_score_v1__score").to_pylist()
    single = [stage(make_batch([row])).column("image_clip_score_v1__score")[0].as_py() for row in rows[:-1]]
    assert batch_scores[-1] is None  # not an image-text pair: not scored
    assert np.allclose(batch_scores[:-1], single, atol=1e-5)
    assert len(set(np.round(single, 6))) > 1 and all(-1 <= s <= 1 for s in single)


def test_threshold_policy_and_undecodable_images(tiny_clip, make_batch, make_record):
    rows = _pairs(make_record)
    broken = {"kind": "image", "uri": None, "offset": None, "size": 9, "bytes": b"not a png", "format": "png"}
    rows.append(make_record("p/broken", "a caption", modality="image", media=[broken]))
    free = ImageClipScore(model=tiny_clip["config"], pretrained=tiny_clip["pt"], device="cpu")
    scores = free(make_batch(rows)).column("image_clip_score_v1__score").to_pylist()[:-1]
    middle = float(np.median(scores))
    out = ImageClipScore(model=tiny_clip["config"], pretrained=tiny_clip["pt"], device="cpu", threshold=middle)(
        make_batch(rows)
    )
    reasons = out.column(S.DROP_REASON).to_pylist()
    assert [r for r, s in zip(reasons, scores) if s < middle] == ["image_clip_score_v1:low_score"] * 3
    assert [r for r, s in zip(reasons, scores) if s >= middle] == [None] * 3
    assert reasons[-1] is None and out.column(S.ERROR)[-1].as_py().startswith("image_clip_score_v1:undecodable_image")


def test_missing_or_absent_weights_are_refused(tiny_clip, tmp_path):
    with pytest.raises(ConfigError, match="needs weights"):
        ImageClipScore.check(model=tiny_clip["config"], pretrained=None)
    with pytest.raises(ConfigError, match="does not exist"):
        ImageClipScore.check(model=tiny_clip["config"], pretrained=str(tmp_path / "none.safetensors"))
    with pytest.raises(ConfigError, match="local"):
        ClipScorer("ViT-B-32", "laion2b_s34b_b79k", device="cpu")  # a tag whose weights are not cached here


def test_images_decode_through_the_bounded_decoder(tiny_clip, make_batch, make_record, tmp_path):
    big = _png((90, 160, 30), size=(200, 150))  # 30,000 pixels
    gone = {
        "kind": "image",
        "uri": str(tmp_path / "gone.png"),
        "offset": None,
        "size": 10,
        "bytes": None,
        "format": "png",
    }
    rows = _pairs(make_record, 2) + [
        make_record(
            "p/big",
            "a big picture",
            modality="image",
            media=[{"kind": "image", "uri": None, "offset": None, "size": len(big), "bytes": big, "format": "png"}],
        ),
        make_record("p/gone", "a lost picture", modality="image", media=[gone]),
        make_record("p/none", "an image record with no image", modality="image"),
    ]
    stage = ImageClipScore(model=tiny_clip["config"], pretrained=tiny_clip["st"], device="cpu", max_pixels=10_000)
    out = stage(make_batch(rows))
    errors = out.column(S.ERROR).to_pylist()
    assert errors[:2] == [None, None]  # 90 x 70 = 6,300 pixels: scored
    assert errors[2] == "image_clip_score_v1:too_many_pixels: 200x150 > 10000 pixels"
    assert errors[3].startswith("image_clip_score_v1:unreadable_media:")
    assert errors[4].startswith("image_clip_score_v1:no_image")
    scores = out.column("image_clip_score_v1__score").to_pylist()
    assert all(s is not None for s in scores[:2]) and scores[2:] == [None, None, None]
    default = ImageClipScore(model=tiny_clip["config"], pretrained=tiny_clip["st"], device="cpu")
    assert default(make_batch(rows[2:3])).column(S.ERROR).to_pylist() == [None]  # within Pillow's own limit
