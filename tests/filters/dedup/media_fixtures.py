"""Pictures and clips made on the spot for the dedup tests."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import ffmpeg
import numpy as np
from PIL import Image, ImageDraw

from fusionforge.pipelines.core.video import require_tool


def picture(seed: int, size: int = 256) -> Image.Image:
    """A busy synthetic photo: two waves, noise and a few discs, different for every seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.sin(x / rng.uniform(5, 40) + rng.uniform(0, 6)) + np.cos(y / rng.uniform(5, 40) + rng.uniform(0, 6))
    pixels = np.stack([base * 60 + 128 + rng.normal(0, 12, base.shape) for _ in range(3)], axis=-1)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.integers(0, size - 40, 2)
        width = int(rng.integers(20, 120))
        draw.ellipse(
            (int(x0), int(y0), int(x0) + width, int(y0) + width), fill=tuple(int(c) for c in rng.integers(0, 255, 3))
        )
    return image


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def crop_fraction(image: Image.Image, left=0.0, top=0.0, right=0.0, bottom=0.0) -> Image.Image:
    w, h = image.size
    return image.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))


def clip(path: Path, source: str = "testsrc", seconds: float = 4.0, size: str = "160x120", rate: int = 10) -> Path:
    args = (
        ffmpeg.input(f"{source}=duration={seconds}:size={size}:rate={rate}", f="lavfi")
        .output(str(path), vcodec="libx264", pix_fmt="yuv420p", g=rate)
        .global_args("-y", "-v", "error", "-threads", "1")
        .compile(cmd=require_tool("ffmpeg"))
    )
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return path


def transcode(src: Path, dst: Path, *extra: str) -> Path:
    args = [require_tool("ffmpeg"), "-y", "-v", "error", "-threads", "1", "-i", str(src), *extra, str(dst)]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return dst
