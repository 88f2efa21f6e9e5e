"""Video keys: a hash of the decoded stream (exact) and a sequence of frame pHashes (near).

The exact key is ffmpeg's ``hash`` muxer over the decoded frames of the first video stream, so a
remuxed copy (same frames, another container) keeps its key while its bytes change. For near
duplicates, frames are sampled at a fixed rate and shrunk to 32x32 gray by ffmpeg, then pHashed
in one numpy call; two videos match when enough *aligned* frames (same sample index) are within a
Hamming distance. Every ffmpeg call is built with ffmpeg-python and runs with a timeout.
"""

from __future__ import annotations

import ffmpeg
import numpy as np

from fusionforge.filters.dedup.image_hash import PHASH_SIDE, phash_gray
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.video import DEFAULT_TIMEOUT_S, require_tool, run_tool

ANCHORS = 4  # frames per video that index it for candidate search


def _run(stream, timeout_s: float) -> bytes:
    args = stream.global_args("-nostdin", "-hide_banner", "-v", "error", "-threads", "1").compile(
        cmd=require_tool("ffmpeg")
    )
    done = run_tool(args, timeout_s)
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()[-300:] or f"ffmpeg exited with {done.returncode}"
        raise BadMedia("unreadable_video", detail)
    return done.stdout


def stream_key(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, int]:
    """128 bits (hi, lo) of the SHA-256 of the first video stream's decoded frames."""
    out = _run(ffmpeg.input(url)["v:0"].output("pipe:", format="hash", hash="sha256"), timeout_s)
    text = out.decode(errors="replace").strip()
    if not text.upper().startswith("SHA256="):
        raise BadMedia("unreadable_video", f"unexpected hash output {text[:80]!r}")
    value = int(text.split("=", 1)[1][:32], 16)
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


def sample_frames(url: str, fps: float = 1.0, max_frames: int = 32, timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """Up to ``max_frames`` frames at ``fps`` as ``(n, 32, 32)`` uint8 gray images."""
    stream = (
        ffmpeg.input(url)["v:0"]
        .filter("fps", fps=fps)
        .filter("scale", PHASH_SIDE, PHASH_SIDE, flags="area")
        .filter("format", "gray")
    )
    out = _run(stream.output("pipe:", format="rawvideo", pix_fmt="gray", vframes=max_frames), timeout_s)
    frame = PHASH_SIDE * PHASH_SIDE
    count = len(out) // frame
    if count == 0:
        raise BadMedia("no_frames", "ffmpeg decoded no frame from the video stream")
    return np.frombuffer(out[: count * frame], np.uint8).reshape(count, PHASH_SIDE, PHASH_SIDE)


def frame_hashes(url: str, fps: float = 1.0, max_frames: int = 32, timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """The pHash of each sampled frame, in time order."""
    return phash_gray(sample_frames(url, fps, max_frames, timeout_s))


def anchor_hashes(sequence: np.ndarray, count: int = ANCHORS) -> np.ndarray:
    """Hashes of ``count`` frames spread evenly over the sequence (the same positions for equal lengths)."""
    positions = np.round(np.linspace(0, len(sequence) - 1, count)).astype(int)
    return np.asarray(sequence, np.uint64)[positions]


def sequence_similarity(a: np.ndarray, b: np.ndarray, max_distance: int) -> float:
    """Aligned frames within ``max_distance`` bits, as a fraction of the longer sequence."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    n = min(len(a), len(b))
    close = np.bitwise_count(np.asarray(a[:n], np.uint64) ^ np.asarray(b[:n], np.uint64)) <= max_distance
    return float(close.sum()) / max(len(a), len(b))
