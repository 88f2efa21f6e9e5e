"""Image keys: an exact key over decoded pixels, and perceptual hashes (pHash, dHash) as uint64.

The exact key hashes the decoded pixels (mode, size, bytes), so a PNG re-saved at another
compression level, or converted to lossless WebP, keeps its key while its file bytes change.
pHash and dHash follow imagehash exactly (``convert("L")``, Lanczos resize, DCT low frequencies
above their median / horizontal gradients); the DCT is a matrix product so that a stack of video
frames is hashed in one call. Bits are packed row-major, first bit highest, as imagehash prints them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import xxhash
from PIL import Image

HASH_KINDS = ("phash", "dhash")
PHASH_SIDE = 32  # imagehash: hash_size 8 x highfreq_factor 4
_BITS = 8


def pixel_key(image: Image.Image) -> tuple[int, int]:
    """128-bit key of the decoded pixels as (hi, lo); an opaque alpha channel is ignored."""
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"))
    pixels = rgba if alpha.min() < 255 else image.convert("RGB")
    digest = xxhash.xxh3_128()
    digest.update(f"{pixels.mode}:{pixels.size[0]}x{pixels.size[1]}:".encode())
    digest.update(pixels.tobytes())
    value = digest.intdigest()
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


@lru_cache(maxsize=4)
def _dct_rows(side: int, keep: int) -> np.ndarray:
    """The first ``keep`` rows of the unnormalised DCT-II matrix (scipy.fftpack's default scaling)."""
    k = np.arange(keep)[:, None]
    n = np.arange(side)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * side))


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """``(n, 64)`` booleans -> n uint64, first bit highest."""
    return np.packbits(bits.reshape(len(bits), -1), axis=1, bitorder="big").view(">u8").ravel().astype(np.uint64)


def phash_gray(frames: np.ndarray) -> np.ndarray:
    """pHash of ``(n, 32, 32)`` grayscale frames: 8x8 lowest DCT frequencies above their median."""
    pixels = np.asarray(frames, dtype=np.float64)
    d = _dct_rows(PHASH_SIDE, _BITS)
    low = np.einsum("ij,njk,lk->nil", d, pixels, d)
    median = np.median(low.reshape(len(low), -1), axis=1)
    return pack_bits(low > median[:, None, None])


def dhash_gray(frames: np.ndarray) -> np.ndarray:
    """dHash of ``(n, 8, 9)`` grayscale frames: is each pixel brighter than its left neighbour."""
    pixels = np.asarray(frames, dtype=np.int16)
    return pack_bits(pixels[:, :, 1:] > pixels[:, :, :-1])


CROP_FRACTION = 0.03
VARIANTS = 9  # crops per image
DEFAULT_MAX_DISTANCE = 8  # pHash bits; measured: copies (resized, re-encoded, cropped <= 5%) <= 8, distinct >= 10
# dHash bits; measured: copies <= 6, but distinct pictures from 2 bits (wave photos: 13 of 1,770 pairs <= 6,
# 24 <= 8), so the colour check does most of the separating and the threshold stays as low as the copies allow
DHASH_MAX_DISTANCE = 6
MAX_DISTANCES = {"phash": DEFAULT_MAX_DISTANCE, "dhash": DHASH_MAX_DISTANCE}
THUMB_SIDE = 16
DEFAULT_MAX_COLOR_DISTANCE = 100.0  # measured: copies <= 81, distinct drawings that pHash confuses >= 126 but 1 in 65
_THUMB_SIDE = 128


def crop_boxes(width: int, height: int, fraction: float = CROP_FRACTION) -> list[tuple[int, int, int, int]]:
    """The centre crop, the four one-side crops and the four corner crops that cut ``fraction`` per cut side."""
    dx, dy = max(1, round(width * fraction)), max(1, round(height * fraction))
    w, h = width, height
    return [
        (dx, dy, w - dx, h - dy),
        (dx, 0, w, h),
        (0, 0, w - dx, h),
        (0, dy, w, h),
        (0, 0, w, h - dy),
        (dx, dy, w, h),
        (0, dy, w - dx, h),
        (dx, 0, w, h - dy),
        (0, 0, w - dx, h - dy),
    ]


def _crops(image: Image.Image, crop_fraction: float) -> list[Image.Image]:
    """Nine slight crops of a thumbnail of at most 128 px (the image itself, repeated, when too small to crop)."""
    thumb = image.copy()
    thumb.thumbnail((_THUMB_SIDE, _THUMB_SIDE), Image.Resampling.LANCZOS)
    if min(thumb.size) < 16:
        return [image] * VARIANTS
    return [thumb.crop(box) for box in crop_boxes(*thumb.size, crop_fraction)]


def image_hashes(image: Image.Image, kind: str = "phash", crop_fraction: float = CROP_FRACTION) -> np.ndarray:
    """The image's hash (index 0, equal to imagehash's) followed by the hashes of its nine slight crops.

    A copy cropped by a few percent on any sides is close to one of the crops of the original (or
    the original to one of the copy's), where it may be far from the original's own hash. Crops
    are cut from a thumbnail of at most 128 px, which hashes the same and costs little.
    """
    if kind not in HASH_KINDS:
        raise ValueError(f"unknown image hash {kind!r}; use one of {HASH_KINDS}")
    gray = image.convert("L")
    variants = [gray] + (_crops(gray, crop_fraction) if crop_fraction > 0 else [])
    side = (PHASH_SIDE, PHASH_SIDE) if kind == "phash" else (_BITS + 1, _BITS)
    stack = np.stack([np.asarray(v.resize(side, Image.Resampling.LANCZOS)) for v in variants])
    return phash_gray(stack) if kind == "phash" else dhash_gray(stack)


def color_thumbnails(image: Image.Image, crop_fraction: float = CROP_FRACTION) -> np.ndarray:
    """16x16 RGB area averages of the image and of the same nine crops, ``(k, 16, 16, 3)`` uint8.

    pHash sees a 32x32 gray picture and only which frequencies are above their median: two flat
    drawings with one blob each at the same place hash alike whatever their colours and shapes.
    The colour thumbnails, compared after the same crop alignment, tell them apart.
    """
    rgb = image.convert("RGB")
    variants = [rgb] + (_crops(rgb, crop_fraction) if crop_fraction > 0 else [])
    side = (THUMB_SIDE, THUMB_SIDE)
    return np.stack([np.asarray(v.resize(side, Image.Resampling.BOX), np.uint8) for v in variants])


def color_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of the 4 largest cell colour differences (RGB Euclidean), best crop alignment either way."""

    def worst_cells(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        cells = np.sqrt(((x.astype(np.float64) - y.astype(np.float64)) ** 2).sum(-1))  # broadcast: (k, 16, 16)
        return np.sort(cells.reshape(len(cells), -1), axis=1)[:, -4:].mean(axis=1)

    return float(min(worst_cells(a[:1], b).min(), worst_cells(a, b[:1]).min()))
