"""Bounded image decoding: check what an encoded image is without letting it exhaust memory."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from fusionforge.pipelines.core.errors import BadMedia

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit (about 9459 x 9459)


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def inspect_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, decode: bool = True) -> ImageInfo:
    """Size and format of an encoded image, fully decoded (``decode``) to catch truncation.

    The header is read first and the pixel count checked against ``max_pixels`` before any pixel
    is decoded; Pillow's own decompression-bomb guard stays on as well.
    """
    with _bad_image_reasons(), _open_checked(data, max_pixels) as image:
        width, height = image.size
        fmt = (image.format or "").lower()
        if decode:
            if fmt == "jpeg":  # DCT-domain downscale: every entropy-coded byte is still read and checked
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    return ImageInfo(width, height, "jpeg" if fmt == "mpo" else fmt)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The fully decoded image, under the same guards as ``inspect_image`` (for stages that need pixels)."""
    with _bad_image_reasons():
        image = _open_checked(data, max_pixels)
        image.load()
        return image


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if width <= 0 or height <= 0:
        raise BadMedia("bad_size", f"{width}x{height}")
    if width * height > max_pixels:
        raise BadMedia("too_many_pixels", f"{width}x{height} > {max_pixels} pixels")
    return image


@contextmanager
def _bad_image_reasons() -> Iterator[None]:
    """Pillow's exceptions (and its bomb warning, made an error) as ``BadMedia`` with a short reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadMedia("decompression_bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise BadMedia("undecodable_image", "not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadMedia("undecodable_image", f"{type(exc).__name__}: {exc}") from exc
