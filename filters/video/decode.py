"""ffmpeg commands built with ffmpeg-python and run with a timeout: frames out as numpy arrays.

ffmpeg-python builds the argument list (``stream.compile()``); ``core.video.run_tool`` runs it
without a shell, with a wall-clock timeout, and a timeout is a ``BadMedia("timeout")``. Any decoder
error on stderr (a truncated or damaged stream) is a ``BadMedia("corrupt_video")``: a clip cut
short would otherwise pass with silently fewer frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import ffmpeg
import numpy as np

from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.video import require_tool, run_tool, tool_message

QUIET = ("-nostdin", "-hide_banner", "-v", "error")


def run_ffmpeg(stream: ffmpeg.nodes.OutputStream, timeout_s: float, threads: int = 1) -> bytes:
    """Run a built ffmpeg command; return its stdout (raise ``BadMedia`` on errors or a timeout)."""
    args = stream.global_args(*QUIET, "-threads", str(threads)).compile(cmd=require_tool("ffmpeg"))
    done = run_tool(args, timeout_s)
    errors = tool_message(done.stderr)
    if done.returncode != 0 or errors:
        last = errors.splitlines()[-1] if errors else f"ffmpeg exited with {done.returncode}"
        raise BadMedia("corrupt_video", last[-300:])
    return done.stdout


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size that fits ``max_side`` (never upscaled), both sides even (what encoders expect)."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


@dataclass(frozen=True)
class Frames:
    """Decoded frames: ``pixels`` is (n, height, width) for gray or (n, height, width, 3) for RGB."""

    pixels: np.ndarray
    fps: float | None  # the sampling rate (None: every frame, or keyframes)

    @property
    def count(self) -> int:
        return int(self.pixels.shape[0])

    def times(self) -> list[float] | None:
        """Timestamps of sampled frames (frame i of an fps-sampled video sits at i / fps)."""
        return None if self.fps is None else [round(i / self.fps, 6) for i in range(self.count)]


def decode_frames(
    url: str,
    width: int,
    height: int,
    *,
    fps: float | None = None,
    max_side: int = 512,
    gray: bool = False,
    keyframes_only: bool = False,
    max_frames: int | None = None,
    timeout_s: float = 120.0,
) -> Frames:
    """Frames of a video, optionally resampled to ``fps``, scaled to fit ``max_side``.

    Args:
        url: an ffmpeg input (a file or a ``subfile`` byte range).
        width: the video's width (from the probe), to know the output frame size.
        height: the video's height.
        fps: sample at this rate (ffmpeg's ``fps`` filter: nearest frame per tick); None keeps every frame.
        max_side: longest side of the output frames.
        gray: one 8-bit channel instead of RGB (for motion scores).
        keyframes_only: decode only keyframes (``-skip_frame nokey``).
        max_frames: stop after this many frames.
        timeout_s: wall-clock limit of the ffmpeg process.
    """
    if width <= 0 or height <= 0:
        raise BadMedia("no_video_stream", f"unknown frame size {width}x{height}")
    out_w, out_h = scaled_size(width, height, max_side)
    stream = ffmpeg.input(url, **({"skip_frame": "nokey"} if keyframes_only else {}))
    if fps is not None:
        stream = stream.filter("fps", fps=fps)
    stream = stream.filter("scale", out_w, out_h)
    extra = {"vsync": "passthrough"} if keyframes_only else {}
    if max_frames is not None:
        extra["frames:v"] = max_frames
    output = stream.output("pipe:", format="rawvideo", pix_fmt="gray" if gray else "rgb24", **extra)
    raw = run_ffmpeg(output, timeout_s)
    channels = 1 if gray else 3
    frame_bytes = out_w * out_h * channels
    count = len(raw) // frame_bytes
    pixels = np.frombuffer(raw[: count * frame_bytes], dtype=np.uint8)
    shape = (count, out_h, out_w) if gray else (count, out_h, out_w, 3)
    return Frames(pixels.reshape(shape), fps)
