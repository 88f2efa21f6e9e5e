import pytest
from media_fixtures import clip, transcode

from fusionforge.filters.dedup.video_hash import anchor_hashes, frame_hashes, sequence_similarity, stream_key
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.video import ffmpeg_url


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    original = clip(folder / "original.mp4", "testsrc", seconds=4)
    return {
        "original": original,
        "remuxed": transcode(original, folder / "remuxed.mkv", "-c", "copy"),
        "reencoded": transcode(
            original, folder / "reencoded.mp4", "-c:v", "libx264", "-crf", "35", "-vf", "scale=240:180"
        ),
        "other": clip(folder / "other.mp4", "smptebars", seconds=4),
        "testsrc2": clip(folder / "testsrc2.mp4", "testsrc2", seconds=4),
    }


def test_stream_key_follows_decoded_frames_not_container_bytes(clips):
    assert clips["original"].read_bytes() != clips["remuxed"].read_bytes()
    assert stream_key(str(clips["original"])) == stream_key(str(clips["remuxed"]))
    assert stream_key(str(clips["original"])) != stream_key(str(clips["reencoded"]))


def test_reencoded_and_resized_copy_matches_other_videos_do_not(clips):
    original = frame_hashes(str(clips["original"]), fps=2.0)
    assert len(original) == 8
    assert sequence_similarity(original, frame_hashes(str(clips["reencoded"]), fps=2.0), 8) >= 0.8
    for name in ("other", "testsrc2"):
        assert sequence_similarity(original, frame_hashes(str(clips[name]), fps=2.0), 8) < 0.5
    assert len(frame_hashes(str(clips["original"]), fps=2.0, max_frames=3)) == 3
    assert list(anchor_hashes(original)) == [original[0], original[2], original[5], original[7]]


def test_byte_range_inside_a_bigger_file_and_failures(clips, tmp_path):
    data = clips["original"].read_bytes()
    container = tmp_path / "blob.bin"
    container.write_bytes(b"x" * 1000 + data + b"y" * 500)
    url = ffmpeg_url(str(container), 1000, len(data))
    assert stream_key(url) == stream_key(str(clips["original"]))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    with pytest.raises(BadMedia, match="unreadable_video"):
        frame_hashes(str(broken))
    with pytest.raises(BadMedia, match="timeout"):
        stream_key(str(clips["original"]), timeout_s=0.001)
