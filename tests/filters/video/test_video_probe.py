import subprocess

import ffmpeg
import pytest

from fusionforge.filters.video.probe import VideoProbe
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.video import require_tool


@pytest.fixture(scope="module")
def videos(tmp_path_factory, make_video):
    folder = tmp_path_factory.mktemp("probe")
    short = make_video(folder / "short.mp4", [("testsrc", 0.6)], rate=10)
    normal = make_video(folder / "normal.mp4", [("testsrc", 2.0)], rate=25)
    small = make_video(folder / "small.mp4", [("testsrc", 2.0)], rate=25, size="48x32")
    broken = folder / "broken.mp4"
    broken.write_bytes(normal.read_bytes()[:300])
    return {"short": short, "normal": normal, "small": small, "broken": broken}


def _batch(make_batch, make_record, make_media, videos):
    rows = []
    for name, path in videos.items():
        item = make_media(videos["normal"], "video") if name == "broken" else make_media(path, "video")
        item.update(uri=str(path), size=path.stat().st_size)
        rows.append(make_record(f"v/{name}", name, modality="video", media=[item]))
    rows.append(make_record("v/text", "no video"))
    return make_batch(rows)


def test_probe_facts_and_rules(videos, make_batch, make_record, make_media):
    out = VideoProbe()(_batch(make_batch, make_record, make_media, videos))
    reasons = dict(zip(out.column(S.ID).to_pylist(), out.column(S.DROP_REASON).to_pylist()))
    assert reasons == {
        "v/short": "video_probe_v1:too_short",
        "v/normal": None,
        "v/small": "video_probe_v1:too_small",
        "v/broken": None,
        "v/text": None,
    }
    row = out.to_pylist()[1]
    assert (row["video_probe_v1__width"], row["video_probe_v1__height"]) == (160, 120)
    assert row["video_probe_v1__duration_s"] == pytest.approx(2.0, abs=0.05)
    assert row["video_probe_v1__fps"] == 25 and row["video_probe_v1__codec"] == "h264"
    assert row["video_probe_v1__n_streams"] == 1
    assert out.column(S.ERROR).to_pylist()[3].startswith("video_probe_v1:unreadable_video:")


def test_limits_are_parameters(videos, make_batch, make_record, make_media):
    stage = VideoProbe(min_duration_s=None, min_side=None, max_duration_s=1.0, codecs=["vp9"], min_fps=20)
    out = stage(_batch(make_batch, make_record, make_media, videos))
    reasons = out.column(S.DROP_REASON).to_pylist()
    assert reasons[:3] == ["video_probe_v1:low_fps", "video_probe_v1:too_long", "video_probe_v1:too_long"]
    allowed = VideoProbe(codecs=["vp9"], min_duration_s=None, min_side=None)(
        _batch(make_batch, make_record, make_media, {"normal": videos["normal"]})
    )
    assert allowed.column(S.DROP_REASON).to_pylist()[0] == "video_probe_v1:codec_not_allowed"


@pytest.fixture(scope="module")
def with_audio(tmp_path_factory):
    """A 2 s 160x120 H.264 video with an AAC sine tone: two streams."""
    path = tmp_path_factory.mktemp("probe-av") / "av.mp4"
    video = ffmpeg.input("testsrc=duration=2:size=160x120:rate=25", f="lavfi")
    audio = ffmpeg.input("sine=frequency=440:duration=2", f="lavfi")
    args = (
        ffmpeg.output(video, audio, str(path), vcodec="libx264", pix_fmt="yuv420p", acodec="aac")
        .global_args("-y", "-v", "error", "-threads", "1")
        .compile(cmd=require_tool("ffmpeg"))
    )
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return path


@pytest.mark.parametrize(
    ("name", "limits", "reason"),
    [
        ("normal", {"max_fps": 24}, "video_probe_v1:high_fps"),  # 25 fps
        ("normal", {"max_fps": 25}, None),
        ("normal", {"max_side": 150}, "video_probe_v1:too_large"),  # 160 x 120
        ("normal", {"max_side": 160}, None),
        ("with_audio", {"max_streams": 1}, "video_probe_v1:too_many_streams"),  # video + audio
        ("with_audio", {"max_streams": 2}, None),
        ("normal", {"max_streams": 1}, None),
    ],
)
def test_upper_limits_keep_or_drop(videos, with_audio, make_batch, make_record, make_media, name, limits, reason):
    path = with_audio if name == "with_audio" else videos[name]
    out = VideoProbe(**limits)(
        make_batch([make_record(f"v/{name}", name, modality="video", media=[make_media(path, "video")])])
    )
    assert out.column(S.DROP_REASON).to_pylist() == [reason]
    assert out.column("video_probe_v1__n_streams").to_pylist() == [2 if name == "with_audio" else 1]
