"""NudeNet's bundled model: it loads from the package and scores in [0, 1]; no NSFW pictures are made here."""

from pathlib import Path

import pyarrow as pa
import pytest

from fusionforge.filters.safety.nsfw import EXPOSED, SafetyNsfw, picture_score
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError

STAGE = "safety_nsfw_v1"


@pytest.fixture(scope="module")
def stage():
    return SafetyNsfw(max_score=0.5)


def test_the_model_ships_in_the_package_and_loads_from_it(stage):
    import nudenet

    bundled = Path(nudenet.__file__).parent / "320n.onnx"
    assert bundled.stat().st_size > 10_000_000  # the detector's weights are in the wheel, not downloaded
    session = stage.detector.onnx_session
    assert session.get_inputs()[0].shape[1] == 3 and stage.detector.input_width == 320
    assert "CPUExecutionProvider" in session.get_providers()


def test_scores_are_in_range_and_equal_nudenet_on_the_same_bytes(stage, pictures, make_batch, make_record):
    from nudenet import NudeDetector

    images = [pictures.faces(1)[0], pictures.text(3), *pictures.plain()]
    rows = [make_record(f"i/{i}", "x", "image", [pictures.item(im)]) for i, im in enumerate(images)]
    out = stage(make_batch(rows))
    scores = out.column(S.stage_column(STAGE, "score")).to_pylist()
    assert all(0.0 <= s <= 1.0 for s in scores)
    reference = NudeDetector()
    expected = [picture_score(reference.detect(pictures.encode(im)))[0] for im in images]
    assert scores == pytest.approx(expected, abs=1e-6)
    assert out.column(S.stage_column(STAGE, "pictures")).to_pylist() == [1] * len(images)
    assert out.column(S.DROP_REASON).to_pylist() == [None] * len(images)  # none of these pictures is NSFW


def test_only_exposed_parts_count_and_the_policy_drops_above_the_limit(stage):
    detections = [
        {"class": "FACE_FEMALE", "score": 0.9, "box": [0, 0, 5, 5]},
        {"class": "BELLY_EXPOSED", "score": 0.8, "box": [0, 0, 5, 5]},
        {"class": "BUTTOCKS_EXPOSED", "score": 0.4, "box": [0, 0, 5, 5]},
    ]
    assert picture_score(detections) == (0.4, {"BUTTOCKS_EXPOSED"})
    assert picture_score([]) == (0.0, set())
    from nudenet import nudenet as module

    assert set(EXPOSED) <= set(getattr(module, "__labels"))  # the labels are NudeNet's own
    scores = {"score": pa.array([0.1, 0.5, 0.51, None], pa.float64())}
    assert stage.decide(scores) == [None, None, "nsfw", None]


def test_a_video_is_judged_by_its_worst_keyframe(
    stage, pictures, make_batch, make_record, make_video, make_media, tmp_path
):
    video = make_video(tmp_path / "bars.mp4", [("smptebars", 2.0)], rate=10)
    out = stage(make_batch([make_record("v/0", "bars", "video", [make_media(video, "video")])]))
    assert out.column(S.stage_column(STAGE, "pictures")).to_pylist() == [2]  # g=10 at 10 fps: two keyframes
    assert 0.0 <= out.column(S.stage_column(STAGE, "score"))[0].as_py() <= 1.0


def test_settings_are_checked_before_the_model_loads(tmp_path):
    with pytest.raises(ValueError, match="max_score"):
        SafetyNsfw.check(max_score=1.5)
    with pytest.raises(ConfigError, match="does not exist"):
        SafetyNsfw.check(model_path=str(tmp_path / "none.onnx"))
