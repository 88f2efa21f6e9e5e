import io

import numpy as np
import pytest
from PIL import Image

from fusionforge.filters.video.frames import FrameSampler, chunk_sizes, sampling_rate
from fusionforge.filters.video.motion import MotionScore, motion_score
from fusionforge.pipelines.core import schema as S


@pytest.fixture(scope="module")
def clips(tmp_path_factory, make_video):
    folder = tmp_path_factory.mktemp("frames")
    return {
        "moving": make_video(folder / "moving.mp4", [("testsrc", 3.0)], rate=25),  # 3 s: 6 frames at 2 fps
        "still": make_video(folder / "still.mp4", [("smptebars", 2.0)], rate=25),  # 2 s: 4 frames at 2 fps
        "slow": make_video(folder / "slow.mp4", [("testsrc", 4.0)], rate=1),  # 1 fps: never upsampled
    }


def _batch(make_batch, make_record, make_media, clips):
    return make_batch(
        [make_record(f"v/{k}", k, modality="video", media=[make_media(p, "video")]) for k, p in clips.items()]
        + [make_record("t/0", "text")]
    )


def test_chunks_of_four_with_a_flagged_partial_tail():
    assert chunk_sizes(9) == [4, 4, 1] and chunk_sizes(8) == [4, 4] and chunk_sizes(3) == [3]
    assert sampling_rate(2.0, 25.0, 10.0, 256) == 2.0
    assert sampling_rate(2.0, 1.0, 10.0, 256) == 1.0
    assert sampling_rate(2.0, 25.0, 600.0, 256) == pytest.approx(256 / 600)


def test_frames_are_sampled_counted_chunked_and_stored(clips, make_batch, make_record, make_media):
    out = FrameSampler(fps=2.0, max_side=64, store_frames=True)(_batch(make_batch, make_record, make_media, clips))
    rows = {r[S.ID]: r for r in out.to_pylist()}
    moving = rows["v/moving"]
    assert moving["video_frames_v1__fps"] == 2.0 and moving["video_frames_v1__n_frames"] == 6
    assert moving["video_frames_v1__chunk_sizes"] == [4, 2] and moving["video_frames_v1__partial_chunk"] is True
    assert moving["video_frames_v1__frame_times"] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert rows["v/still"]["video_frames_v1__chunk_sizes"] == [4]
    assert rows["v/still"]["video_frames_v1__partial_chunk"] is False
    assert rows["v/slow"]["video_frames_v1__fps"] == 1.0 and rows["v/slow"]["video_frames_v1__n_frames"] == 4
    frames = [m for m in moving[S.MEDIA] if m["kind"] == "frame"]
    assert moving[S.MEDIA][0]["kind"] == "video" and len(frames) == 6
    with Image.open(io.BytesIO(frames[0]["bytes"])) as image:
        assert image.size == (64, 48) == (frames[0]["width"], frames[0]["height"])
    assert rows["t/0"]["video_frames_v1__n_frames"] is None
    assert out.schema.field("video_frames_v1__chunk_sizes").type.value_type.bit_width == 32
    again = FrameSampler(fps=2.0, max_side=64, store_frames=True)(out)  # replaces earlier frames, never stacks
    assert sum(m["kind"] == "frame" for m in again.to_pylist()[0][S.MEDIA]) == 6
    plain = FrameSampler(fps=2.0)(_batch(make_batch, make_record, make_media, clips))  # default: columns only
    assert all(m["kind"] == "video" for m in plain.to_pylist()[0][S.MEDIA])


def test_motion_separates_moving_from_static_clips(clips, make_batch, make_record, make_media):
    out = MotionScore()(_batch(make_batch, make_record, make_media, clips))
    rows = {r[S.ID]: r for r in out.to_pylist()}
    assert rows["v/moving"]["video_motion_v1__motion"] > 0.004
    assert rows["v/still"]["video_motion_v1__motion"] < 0.001
    assert rows["v/moving"][S.DROP_REASON] is None and rows["v/still"][S.DROP_REASON] == "video_motion_v1:static"
    assert rows["v/moving"]["video_motion_v1__frames"] == 12
    assert motion_score(np.zeros((1, 4, 4))) != motion_score(np.zeros((1, 4, 4)))  # NaN: one frame says nothing
    assert motion_score(np.stack([np.zeros((2, 2)), np.full((2, 2), 255)])) == 1.0


def test_truncated_video_gets_an_error_from_decoding_stages(clips, tmp_path, make_batch, make_record, make_media):
    item = make_media(clips["moving"], "video")
    broken = tmp_path / "cut.mp4"
    broken.write_bytes(clips["moving"].read_bytes()[:6000])
    item.update(uri=str(broken), size=6000)
    batch = make_batch([make_record("v/cut", "cut short", modality="video", media=[item])])
    assert FrameSampler()(batch).column(S.ERROR)[0].as_py().startswith("video_frames_v1:corrupt_video")
    assert MotionScore()(batch).column(S.ERROR)[0].as_py().startswith("video_motion_v1:corrupt_video")
