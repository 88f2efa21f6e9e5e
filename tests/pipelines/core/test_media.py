import io
import struct
import zlib

import pytest
from PIL import Image

from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.images import inspect_image
from fusionforge.pipelines.core.video import ffmpeg_url, probe_video, verify_decode
from fusionforge.pipelines.demo_corpus import make_video


def _png(width, height):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_header_only(width, height):
    """A PNG whose header claims a huge size: opening it must not decode (or allocate) anything."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + end


def test_inspect_image_reports_size_and_format():
    info = inspect_image(_png(40, 30))
    assert (info.width, info.height, info.format) == (40, 30, "png")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_png(40, 30)[:60], "undecodable_image"),
        (b"GIF89a not really", "undecodable_image"),
        (b"plain text", "undecodable_image"),
        (_png_header_only(100_000, 100_000), "decompression_bomb"),
    ],
)
def test_bad_images_get_a_reason(data, reason):
    with pytest.raises(BadMedia) as caught:
        inspect_image(data)
    assert caught.value.reason == reason


def test_max_pixels_is_checked_before_decoding():
    with pytest.raises(BadMedia) as caught:
        inspect_image(_png_header_only(5000, 5000), max_pixels=1_000_000)
    assert caught.value.reason == "too_many_pixels"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    make_video(path, "testsrc", seconds=1.0, size="64x48", rate=10, faststart=True)
    return path


def test_probe_and_decode_a_real_clip_and_a_byte_range(clip, tmp_path):
    info = probe_video(str(clip))
    assert (info.width, info.height, info.codec, info.n_frames) == (64, 48, "h264", 10)
    assert info.duration_s == pytest.approx(1.0, abs=0.05)
    verify_decode(str(clip))
    padded = tmp_path / "padded.bin"
    data = clip.read_bytes()
    padded.write_bytes(b"x" * 1000 + data + b"y" * 1000)
    assert probe_video(ffmpeg_url(str(padded), 1000, len(data))).n_frames == 10


def test_truncated_and_garbage_videos_fail_with_reasons(clip, tmp_path):
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(BadMedia) as caught:
        verify_decode(str(cut))
    assert caught.value.reason == "corrupt_video"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 5000)
    with pytest.raises(BadMedia) as caught:
        probe_video(str(junk))
    assert caught.value.reason == "unreadable_video"


def test_every_ffmpeg_call_has_a_timeout(clip):
    with pytest.raises(BadMedia) as caught:
        probe_video(str(clip), timeout_s=0.0001)
    assert caught.value.reason == "timeout"


def _address_space_limit(**kwargs) -> list[str]:
    """The soft and hard address-space limits a process started by ``run_tool`` sees."""
    from fusionforge.pipelines.core.video import run_tool

    done = run_tool(["cat", "/proc/self/limits"], timeout_s=10, **kwargs)
    (line,) = [row for row in done.stdout.decode().splitlines() if row.startswith("Max address space")]
    return line.split()[3:5]


def test_ffmpeg_tools_run_under_an_address_space_limit():
    assert _address_space_limit(memory_mb=300) == [str(300 * 1024**2)] * 2
    assert _address_space_limit() == [str(2048 * 1024**2)] * 2


def test_without_prlimit_the_limit_is_set_in_the_child(monkeypatch):
    """The fallback path (no util-linux ``prlimit``) gives the tool the same limit."""
    from fusionforge.pipelines.core import video

    real_which = video.shutil.which
    monkeypatch.setattr(video.shutil, "which", lambda name: None if name == "prlimit" else real_which(name))
    assert _address_space_limit(memory_mb=300) == [str(300 * 1024**2)] * 2


def test_a_tool_that_runs_out_of_its_memory_limit_fails_with_a_clear_reason(clip):
    with pytest.raises(BadMedia) as caught:
        verify_decode(str(clip), memory_mb=16)  # too little even to load ffmpeg's libraries
    assert caught.value.reason == "tool_memory_limit" and "16 MiB" in caught.value.detail
    with pytest.raises(BadMedia) as caught:
        probe_video(str(clip), memory_mb=16)
    assert caught.value.reason == "tool_memory_limit"
    verify_decode(str(clip), memory_mb=1024)  # a normal clip decodes well inside a normal limit
