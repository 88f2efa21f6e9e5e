import pytest
from fusionforge.filters.video.probe import VideoProbe
from fusionforge.pipelines.core import schema as S


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
    assert reasons == {"v/short": "video_probe_v1:too_short", "v/normal": None, "v/small": "video_probe_v1:too_small",
                       "v/broken": None, "v/text": None}
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
        _batch(make_batch, make_record, make_media, {"normal": videos["normal"]}))
    assert allowed.column(S.DROP_REASON).to_pylist()[0] == "video_probe_v1:codec_not_allowed"
