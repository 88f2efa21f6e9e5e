"""ffprobe / ffmpeg calls, each with a timeout and a memory limit.

A media item inside a tar shard is addressed with ffmpeg's ``subfile`` protocol (a byte range of
the tar), so nothing is copied to a temporary file. Processes are started with argument lists,
never through a shell.

Why ffprobe runs here rather than through ``ffmpeg.probe``: ffmpeg-python 0.2.0 (its latest release)
has no timeout on ``probe`` (it calls ``Popen.communicate()`` without one, so a stalled read of a
remote or damaged file would hang the worker), and its keyword arguments become ffprobe flags, so
``timeout=`` would pass ffprobe's own ``-timeout`` (a network I/O option in microseconds, not a wall
clock). ``run_tool`` gives every ffmpeg-family process a wall-clock timeout and kills it on expiry,
and caps its address space (``RLIMIT_AS``), since a timeout alone lets a 2-second 8K clip take
hundreds of MB per process (and more with more cores: ffmpeg decodes with one thread per core). The
default of 2 GiB decodes 4K video with 32 decoder threads; a tool that runs out of it fails with
``tool_memory_limit``. ffmpeg-python still builds the longer ffmpeg command lines
(``filters/video/decode.py``).
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path

from fusionforge.pipelines.core.errors import BadMedia

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_TOOL_MEMORY_MB = 2048.0
# What ffmpeg, ffprobe and the dynamic loader print when an allocation fails under the limit.
_OUT_OF_MEMORY = ("cannot allocate memory", "could not allocate memory", "out of memory", "failed to map segment")


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration_s: float
    fps: float
    n_frames: int
    codec: str
    n_streams: int
    format: str


def ffmpeg_url(uri: str, offset: int | None = None, size: int | None = None) -> str:
    """The input URL ffmpeg reads: the file itself, or a byte range of it."""
    if offset is None:
        return uri
    return f"subfile,,start,{offset},end,{offset + size},,:{uri}"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BadMedia("ffmpeg_missing", f"{name} is not installed (apt-get install ffmpeg)")
    return path


_ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+")


def tool_message(stderr: bytes) -> str:
    """ffmpeg's stderr as text without the per-process object addresses ("[h264 @ 0x55d...]"),
    so the same failure gives the same ledger reason in every process and on every executor."""
    return _ADDRESS.sub("", stderr.decode(errors="replace")).strip()


def run_tool(
    args: list[str],
    timeout_s: float,
    input_bytes: bytes | None = None,
    memory_mb: float = DEFAULT_TOOL_MEMORY_MB,
) -> subprocess.CompletedProcess:
    """Run an ffmpeg-family command with a wall-clock timeout and an address-space limit of ``memory_mb``.

    A timeout is a ``BadMedia("timeout")``; running out of the memory limit is ``BadMedia("tool_memory_limit")``.
    """
    limit_bytes = int(memory_mb * 1024**2)
    command, preexec = _limited(args, limit_bytes)
    try:
        done = subprocess.run(
            command, input=input_bytes, capture_output=True, timeout=timeout_s, check=False, preexec_fn=preexec
        )
    except subprocess.TimeoutExpired as exc:
        raise BadMedia("timeout", f"{args[0]} took longer than {timeout_s:.0f}s") from exc
    if done.returncode != 0 and any(
        marker in done.stderr.decode(errors="replace").lower() for marker in _OUT_OF_MEMORY
    ):
        raise BadMedia("tool_memory_limit", f"{Path(args[0]).name} ran out of its {memory_mb:g} MiB memory limit")
    return done


def _limited(args: list[str], limit_bytes: int) -> tuple[list[str], Callable[[], None] | None]:
    """``args`` under util-linux's ``prlimit --as`` where it exists, else with a ``preexec_fn`` that sets it.

    ``prlimit`` keeps Python's fast ``posix_spawn``/``vfork`` start: a ``preexec_fn`` forces a full
    fork of this (large) process per tool call, which cost video probing about 30% of its throughput.
    """
    prlimit = shutil.which("prlimit")
    if prlimit:
        return [prlimit, f"--as={limit_bytes}", "--", *args], None
    return args, partial(_limit_address_space, limit_bytes)


def _limit_address_space(limit_bytes: int) -> None:
    """Runs in the child between fork and exec: cap its address space (and so its descendants')."""
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def probe_video(url: str, timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: float = DEFAULT_TOOL_MEMORY_MB) -> VideoInfo:
    """Stream facts from ffprobe (duration, fps, size, codec, frame count)."""
    args = [require_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format", "-show_streams", url]
    done = run_tool(args, timeout_s, memory_mb=memory_mb)
    if done.returncode != 0:
        raise BadMedia("unreadable_video", tool_message(done.stderr)[-300:] or "ffprobe failed")
    info = json.loads(done.stdout or b"{}")
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None:
        raise BadMedia("no_video_stream", "the file has no video stream")
    fmt = info.get("format", {})
    duration = float(video.get("duration") or fmt.get("duration") or 0.0)
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    frames = int(video.get("nb_frames") or 0) or int(round(duration * fps))
    return VideoInfo(
        width=int(video.get("width") or 0),
        height=int(video.get("height") or 0),
        duration_s=duration,
        fps=fps,
        n_frames=frames,
        codec=str(video.get("codec_name") or ""),
        n_streams=len(streams),
        format=str(fmt.get("format_name") or "").split(",")[0],
    )


def verify_decode(url: str, timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: float = DEFAULT_TOOL_MEMORY_MB) -> None:
    """Decode the first video stream to nowhere; any decoder error means a truncated or corrupt file."""
    args = [
        require_tool("ffmpeg"),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-xerror",
        "-i",
        url,
        "-map",
        "0:v:0",
        "-f",
        "null",
        "-",
    ]
    done = run_tool(args, timeout_s, memory_mb=memory_mb)
    errors = tool_message(done.stderr)
    if done.returncode != 0 or errors:
        last = errors.splitlines()[-1] if errors else f"ffmpeg exited with {done.returncode}"
        raise BadMedia("corrupt_video", last[-300:])


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return 0.0
