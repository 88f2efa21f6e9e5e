import numpy as np
import pytest

from fusionforge.filters.video.clip_score import VideoClipScore, spread
from fusionforge.pipelines.core import schema as S


def test_spread_picks_evenly():
    assert spread(3, 8) == [0, 1, 2]
    assert spread(10, 3) == [0, 4, 9] or spread(10, 3) == [0, 5, 9]
    assert spread(10, 1) == [5]


def test_keyframe_scores_are_cosines_and_follow_the_threshold(
    tiny_clip, tmp_path, make_video, make_batch, make_record, make_media
):
    videos = [make_video(tmp_path / f"{name}.mp4", [(name, 2.0)], rate=10) for name in ("testsrc", "smptebars")]
    rows = [
        make_record(f"v/{i}", f"a video {i}", modality="video", media=[make_media(v, "video")])
        for i, v in enumerate(videos)
    ]
    stage = VideoClipScore(model=tiny_clip["config"], pretrained=tiny_clip["st"], device="cpu")
    out = stage(make_batch(rows))
    scores = out.column("video_clip_score_v1__score").to_pylist()
    assert all(-1 <= s <= 1 for s in scores) and scores[0] != scores[1]
    assert out.column("video_clip_score_v1__keyframes").to_pylist() == [2, 2]  # g=10 at 10 fps: a keyframe a second
    strict = VideoClipScore(
        model=tiny_clip["config"], pretrained=tiny_clip["st"], device="cpu", threshold=float(np.max(scores)) + 1e-3
    )
    assert strict(make_batch(rows)).column(S.DROP_REASON).to_pylist() == ["video_clip_score_v1:low_score"] * 2
    with pytest.raises(ValueError, match="not both"):
        VideoClipScore.check(model=tiny_clip["config"], pretrained=tiny_clip["st"], threshold=0.1, top_fraction=0.5)
