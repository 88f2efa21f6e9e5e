"""Pictures drawn in the test: cartoon faces OpenCV's Haar cascade finds, printed text, plain pictures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FACE_SIZE = 120


def draw_face(draw: ImageDraw.ImageDraw, cx: float, cy: float, size: float) -> None:
    """An oval face with shaded eye sockets, brows, nose and mouth: the light and dark bands a Haar
    frontal-face cascade keys on (a face without sockets, just dots for eyes, is not found)."""
    w, h = size * 0.8, size
    draw.ellipse([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=(220, 180, 150))
    ey, ex = cy - h * 0.1, w * 0.22
    for side in (-1, 1):
        x = cx + side * ex
        draw.ellipse([x - w * 0.14, ey - h * 0.09, x + w * 0.14, ey + h * 0.07], fill=(120, 90, 75))
        draw.rectangle([x - w * 0.15, ey - h * 0.16, x + w * 0.15, ey - h * 0.12], fill=(50, 35, 25))
        draw.ellipse([x - w * 0.07, ey - h * 0.04, x + w * 0.07, ey + h * 0.04], fill=(25, 20, 15))
    nose = [(cx - w * 0.05, ey), (cx - w * 0.09, cy + h * 0.14), (cx + w * 0.09, cy + h * 0.14), (cx + w * 0.05, ey)]
    draw.polygon(nose, fill=(235, 200, 170))
    draw.ellipse([cx - w * 0.22, cy + h * 0.25, cx + w * 0.22, cy + h * 0.32], fill=(110, 50, 50))


def faces_picture(count: int, size: int = FACE_SIZE, canvas=(640, 480)) -> tuple[Image.Image, list[tuple]]:
    """``count`` faces side by side on a blue background, and their centres."""
    image = Image.new("RGB", canvas, (70, 110, 150))
    draw = ImageDraw.Draw(image)
    centres = [(float(x), canvas[1] / 2) for x in np.linspace(0, canvas[0], count + 2)[1:-1]]
    for cx, cy in centres:
        draw_face(draw, cx, cy, size)
    return image.filter(ImageFilter.GaussianBlur(max(1, size / 80))), centres


def text_picture(lines: int = 5, size=(400, 260), font_size: int = 28) -> Image.Image:
    """Black lines of English text on white, at a readable size."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    for i in range(lines):
        draw.text((16, 16 + i * font_size * 1.6), f"Line {i + 1}: a quick brown fox", fill="black", font=font)
    return image


def plain_pictures() -> list[Image.Image]:
    """Pictures with neither faces nor text: a flat colour, a gradient, smooth noise, a few shapes."""
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None].repeat(240, 0).repeat(3, 2)
    noise = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(3))
    shapes = Image.new("RGB", (320, 240), (245, 245, 240))
    draw = ImageDraw.Draw(shapes)
    draw.rectangle([30, 40, 120, 150], fill=(200, 40, 40))
    draw.ellipse([160, 60, 290, 190], fill=(40, 90, 200))
    return [Image.new("RGB", (320, 240), (90, 140, 60)), Image.fromarray(gradient), noise, shapes]


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def image_item(image: Image.Image, fmt: str = "PNG") -> dict:
    """An inline image media entry, as a reader that embeds media makes it."""
    import hashlib

    data = encoded(image, fmt)
    return {
        "kind": "image",
        "uri": None,
        "offset": None,
        "size": len(data),
        "bytes": data,
        "sha256": hashlib.sha256(data).hexdigest(),
        "format": fmt.lower(),
        "width": image.width,
        "height": image.height,
    }


@pytest.fixture(scope="session")
def pictures():
    """The drawing helpers, for the safety tests."""

    class Pictures:
        faces = staticmethod(faces_picture)
        text = staticmethod(text_picture)
        plain = staticmethod(plain_pictures)
        item = staticmethod(image_item)
        encode = staticmethod(encoded)

    return Pictures
