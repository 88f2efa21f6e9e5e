import json

import pytest

from fusionforge.filters.video.scenes import parse_scene_scores, plan_clips, scene_scores
from fusionforge.filters.video.split import SceneSplit
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.source import ORDER_COL, PARTITION_COL, in_order
from fusionforge.pipelines.core.video import probe_video

SEGMENTS = [("testsrc", 1.2), ("smptebars", 2.0), ("rgbtestsrc", 1.6)]  # hard cuts at 1.2 s and 3.2 s
RATE = 25


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory, make_video):
    folder = tmp_path_factory.mktemp("scenes")
    return make_video(folder / "cuts.mp4", SEGMENTS, rate=RATE), make_video(
        folder / "one.mp4", [("testsrc", 2.0)], rate=RATE
    )


def test_detected_cuts_land_within_one_frame_of_the_truth(cut_video):
    cuts, _ = cut_video
    scores = scene_scores(str(cuts), 160, 120)
    assert len(scores) == int(round(sum(s for _, s in SEGMENTS) * RATE))
    plan = plan_clips(scores, probe_video(str(cuts)).duration_s, threshold=0.3)
    truth = [0.0, 1.2, 3.2]
    assert len(plan) == 3
    for (start, _), expected in zip(plan, truth):
        assert abs(start - expected) <= 1 / RATE
    assert plan[-1][1] == pytest.approx(4.8, abs=1 / RATE)


def test_planning_rules_minimum_and_maximum_clip_length():
    scores = [(t / 10, 0.9 if t in (5, 12, 40) else 0.01) for t in range(50)]
    assert plan_clips(scores, 5.0, 0.3, min_clip_s=0.4) == [(0.0, 0.5), (0.5, 1.2), (1.2, 4.0), (4.0, 5.0)]
    assert plan_clips(scores, 5.0, 0.3, min_clip_s=1.0) == [(0.0, 1.2), (1.2, 4.0), (4.0, 5.0)]
    assert plan_clips(scores, 5.0, 0.95) == [(0.0, 5.0)]
    assert plan_clips(scores, 5.0, 0.95, max_clip_s=2.0) == [(0.0, 1.666667), (1.666667, 3.333333), (3.333333, 5.0)]
    assert plan_clips([], 0.0) == []
    assert parse_scene_scores(
        "frame:0 pts:0 pts_time:0\nlavfi.scene_score=0.000000\nframe:1 pts:1 pts_time:0.04\nlavfi.scene_score=0.7\n"
    ) == [(0.0, 0.0), (0.04, 0.7)]


def test_split_creates_one_record_per_clip_after_its_parent(cut_video, make_batch, make_record, make_media):
    cuts, one = cut_video
    rows = [
        make_record("v/cuts", "three scenes", modality="video", media=[make_media(cuts, "video")]),
        make_record("v/one", "one scene", modality="video", media=[make_media(one, "video")]),
    ]
    batch = make_batch(rows)
    batch = batch.append_column(PARTITION_COL, [[3, 3]]).append_column(ORDER_COL, [[10, 11]])
    out = SceneSplit()(batch)
    assert out.num_rows == 5
    ordered = in_order(out)
    ids = ordered.column(S.ID).to_pylist()
    assert ids == ["v/cuts", "v/cuts#t=0.000,1.200", "v/cuts#t=1.200,3.200", "v/cuts#t=3.200,4.800", "v/one"]
    assert ordered.column(S.PARENT_ID).to_pylist() == [None, "v/cuts", "v/cuts", "v/cuts", None]
    assert ordered.column(S.DROP_REASON).to_pylist() == ["video_scenes_v1:split_into_clips", None, None, None, None]
    assert ordered.column("video_scenes_v1__n_clips").to_pylist() == [3, None, None, None, 1]
    assert ordered.column("video_scenes_v1__cut_times").to_pylist()[0] == [1.2, 3.2]
    clips = ordered.slice(1, 3).to_pylist()
    for clip, (start, end) in zip(clips, [(0.0, 1.2), (1.2, 3.2), (3.2, 4.8)]):
        media = clip[S.MEDIA][0]
        assert media["n_frames"] == int(round((end - start) * RATE))  # frame-accurate clips
        assert media["bytes"][4:8] == b"ftyp" and media["uri"] is None
        assert json.loads(clip[S.META])["clip_of"] == "v/cuts" and clip[S.TEXT] == "three scenes"
        assert (clip["video_scenes_v1__start_s"], clip["video_scenes_v1__end_s"]) == (start, end)
    assert out.column(PARTITION_COL).to_pylist() == [3] * 5


def test_a_truncated_video_is_an_error_not_a_crash(cut_video, tmp_path, make_batch, make_record, make_media):
    cuts, _ = cut_video
    item = make_media(cuts, "video")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(cuts.read_bytes()[:5000])
    item.update(uri=str(broken), size=5000)
    out = SceneSplit()(make_batch([make_record("v/broken", "cut short", modality="video", media=[item])]))
    assert out.num_rows == 1
    assert out.column(S.ERROR)[0].as_py().startswith("video_scenes_v1:")
