"""Bounded image decoding: check what an encoded image is without letting it exhaust memory."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit (about 9459 x 9459)


class BadImage(ValueError):
    """An image that cannot or must not be decoded; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width <= 0 or height <= 0:
                    raise BadImage("bad_size", f"{width}x{height}")
                if width * height > max_pixels:
                    raise BadImage("too_many_pixels", f"{width}x{height} > {max_pixels} pixels")
                fmt = (image.format or "").lower()
                if decode:
                    if fmt == "jpeg":  # DCT-domain downscale: every entropy-coded byte is still read and checked
                        image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                    image.load()
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage("decompression_bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise BadImage("undecodable_image", "not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage("undecodable_image", f"{type(exc).__name__}: {exc}") from exc
    return ImageInfo(width, height, "jpeg" if fmt == "mpo" else fmt)
