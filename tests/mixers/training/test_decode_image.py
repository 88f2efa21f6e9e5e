"""``decode_image``: one decode into the RGB array the processor takes, the pixels it makes from the file."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from fusionforge.mixers.tokens.vision import get_preset
from fusionforge.mixers.training.media import MediaProcessors, decode_image


def encoded(mode: str) -> bytes:
    """A 70x50 PNG of random pixels in ``mode``; in the transparent modes its top-left 30x20 is see-through."""
    rng = np.random.default_rng(0)
    if mode == "P":  # palette index 0 is the transparent one
        indices = rng.integers(1, 16, (50, 70), dtype=np.uint8)
        indices[:20, :30] = 0
        image = Image.fromarray(indices, "P")
        image.putpalette(rng.integers(0, 256, 16 * 3, dtype=np.uint8).tolist())
        image.info["transparency"] = 0
    else:
        rgba = rng.integers(0, 256, (50, 70, 4), dtype=np.uint8)
        rgba[..., 3] = 255
        rgba[:20, :30, 3] = 0
        image = Image.fromarray(rgba, "RGBA")
        image = image if mode == "RGBA" else image.convert(mode)
    out = io.BytesIO()
    image.save(out, "PNG", **({"transparency": 0} if mode == "P" else {}))
    return out.getvalue()


@pytest.mark.parametrize("preset", ["qwen2-vl", "kimi-k25"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_the_pixels_equal_the_processors_own_from_the_file(preset, mode):
    processor = MediaProcessors(get_preset(preset)).image
    data = encoded(mode)
    array = decode_image(data, (70, 50))
    assert array.shape == (50, 70, 3) and array.dtype == np.uint8
    ours = processor(images=[array], input_data_format="channels_last", return_tensors="pt")
    theirs = processor(images=[Image.open(io.BytesIO(data))], return_tensors="pt")  # the processor converts it
    assert torch.equal(ours["pixel_values"], theirs["pixel_values"])
    assert torch.equal(ours["image_grid_thw"], theirs["image_grid_thw"])
    if mode in ("RGBA", "P"):  # the see-through corner is white, as the processor composites it
        assert (array[:20, :30] == 255).all()


def test_an_image_is_resized_to_the_planned_size():
    assert decode_image(encoded("RGB"), (35, 25)).shape == (25, 35, 3)
