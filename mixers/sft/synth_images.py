"""Synthetic images with known answers (Pillow), so vision-through-code synthesis works out of the box.

Four tasks, each answer computed from the drawn pixels, never from intent alone:

- ``count``: how many shapes of one colour (non-overlapping, separated, among other colours);
- ``compare_sizes``: which of two shapes, left or right, covers more pixels (ratio >= 1.3);
- ``bar_value``: a bar's value on a framed chart whose axis runs 0..100 over 200 pixel rows;
- ``locate``: which ninth of the image (top-left ... bottom-right) holds the one shape of a colour.

Shapes are drawn without anti-aliasing, so colours are exact; placements are retried until the
answer is unambiguous (margins from the thirds' borders, gaps between shapes).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from fusionforge.pipelines.core.io import atomic_path

TASKS = ("count", "compare_sizes", "bar_value", "locate")
PALETTE = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}
BACKGROUND = (245, 245, 240)
SHAPES = ("circle", "square", "triangle")
REGIONS = (("top-left", "top", "top-right"), ("left", "center", "right"), ("bottom-left", "bottom", "bottom-right"))


@dataclass
class ImageQA:
    """An image question with a verifiable answer; ``image`` is relative to the QA file's folder."""

    id: str
    image: str
    question: str
    answer: str
    task: str
    params: dict[str, Any] = field(default_factory=dict)


def generate(
    out_dir: str | Path, n: int, seed: int = 0, tasks: tuple[str, ...] = TASKS, size: int = 256
) -> list[ImageQA]:
    """Write ``n`` PNGs under ``out_dir/images/`` and ``out_dir/qa.jsonl``; tasks take turns."""
    unknown = set(tasks) - set(TASKS)
    if unknown or not tasks:
        raise ValueError(f"unknown task(s) {sorted(unknown)}; choose from {', '.join(TASKS)}")
    out = Path(out_dir)
    items = []
    for i in range(n):
        task = tasks[i % len(tasks)]
        rng = random.Random(f"{seed}:{i}:{task}")
        image, question, answer, params = MAKERS[task](rng, size)
        rel = f"images/{i:06d}.png"
        with atomic_path(out / rel) as tmp:
            image.save(tmp, format="PNG")
        items.append(ImageQA(f"synthetic-{i:06d}", rel, question, answer, task, params))
    with atomic_path(out / "qa.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(asdict(q)) + "\n" for q in items), encoding="utf-8")
    return items


def _draw(draw: ImageDraw.ImageDraw, shape: str, cx: int, cy: int, r: int, color) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=color)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=color)


def _mask(size: int, shape: str, cx: int, cy: int, r: int) -> np.ndarray:
    """The pixels one shape covers, drawn alone (ground truth for areas and centres)."""
    canvas = Image.new("L", (size, size), 0)
    _draw(ImageDraw.Draw(canvas), shape, cx, cy, r, 255)
    return np.asarray(canvas) > 0


def _place(
    rng: random.Random, size: int, radii: list[int], gap: int = 6, tries: int = 400
) -> list[tuple[int, int]] | None:
    """Centres for shapes of the given radii whose bounding circles keep ``gap`` pixels apart."""
    placed: list[tuple[int, int, int]] = []
    for r in radii:
        reach = math.ceil(r * 1.45)  # a square's corner is r * sqrt(2) from its centre
        for _ in range(tries):
            x, y = rng.randint(reach + 2, size - reach - 3), rng.randint(reach + 2, size - reach - 3)
            if all(math.hypot(x - px, y - py) >= reach + pr + gap for px, py, pr in placed):
                placed.append((x, y, reach))
                break
        else:
            return None
    return [(x, y) for x, y, _ in placed]


def make_count(rng: random.Random, size: int):
    color = rng.choice(sorted(PALETTE))
    while True:
        k, distractors = rng.randint(1, 7), rng.randint(0, 4)
        radii = [rng.randint(9, 17) for _ in range(k + distractors)]
        centres = _place(rng, size, radii)
        if centres is not None:
            break
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    others = [c for c in sorted(PALETTE) if c != color]
    for j, ((x, y), r) in enumerate(zip(centres, radii)):
        _draw(draw, rng.choice(SHAPES), x, y, r, PALETTE[color if j < k else rng.choice(others)])
    return image, f"How many {color} shapes are in the image?", str(k), {"color": color}


def make_compare(rng: random.Random, size: int):
    while True:
        shapes = [rng.choice(SHAPES), rng.choice(SHAPES)]
        radii = [rng.randint(12, 44), rng.randint(12, 44)]
        centres = []
        for side, r in enumerate(radii):
            reach = math.ceil(r * 1.45)
            low, high = (reach + 4, size // 2 - reach - 6) if side == 0 else (size // 2 + reach + 6, size - reach - 5)
            if low > high:
                break
            centres.append((rng.randint(low, high), rng.randint(reach + 4, size - reach - 5)))
        if len(centres) < 2:
            continue
        areas = [int(_mask(size, s, x, y, r).sum()) for s, (x, y), r in zip(shapes, centres, radii)]
        if max(areas) >= 1.3 * min(areas):
            break
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for s, (x, y), r in zip(shapes, centres, radii):
        _draw(draw, s, x, y, r, PALETTE[rng.choice(sorted(PALETTE))])
    answer = "left" if areas[0] > areas[1] else "right"
    question = "Which shape is larger, the one on the left or the one on the right? Answer left or right."
    return image, question, answer, {"areas": areas}


def make_bar(rng: random.Random, size: int):
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    x0, x1, top, base = 34, size - 14, 28, 228  # the frame: 200 rows for 0..100
    draw.rectangle((x0, top, x1, base), outline=(0, 0, 0), width=1)
    draw.text((6, base - 6), "0", fill=(0, 0, 0))
    draw.text((6, top - 6), "100", fill=(0, 0, 0))
    k = rng.randint(3, 6)
    slot = (x1 - x0 - 8) // k
    values = [rng.randint(5, 95) for _ in range(k)]
    colors = [PALETTE[c] for c in rng.sample(sorted(PALETTE) * 2, k)]
    for j, (value, color) in enumerate(zip(values, colors)):
        left = x0 + 6 + j * slot
        draw.rectangle((left, base - 2 * value, left + slot - 8, base - 1), fill=color)
    index = rng.randint(1, k)
    question = (
        f"The bar chart's y axis runs from 0 at the bottom edge of the plot frame to 100 at its top edge. "
        f"What is the value of bar {index}, counting from the left? Answer with a whole number."
    )
    return image, question, str(values[index - 1]), {"bar_index": index, "axis_max": 100, "tolerance": 1}


def make_locate(rng: random.Random, size: int):
    color = rng.choice(sorted(PALETTE))
    others = [c for c in sorted(PALETTE) if c != color]
    third = size / 3
    while True:
        radii = [rng.randint(10, 20)] + [rng.randint(9, 16) for _ in range(rng.randint(0, 3))]
        centres = _place(rng, size, radii)
        if centres is None:
            continue
        shape = rng.choice(SHAPES)
        ys, xs = np.nonzero(_mask(size, shape, *centres[0], radii[0]))
        cx, cy = xs.mean(), ys.mean()
        if min(abs(cx - b) for b in (third, 2 * third)) > 8 and min(abs(cy - b) for b in (third, 2 * third)) > 8:
            break
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    _draw(draw, shape, *centres[0], radii[0], PALETTE[color])
    for (x, y), r in zip(centres[1:], radii[1:]):
        _draw(draw, rng.choice(SHAPES), x, y, r, PALETTE[rng.choice(others)])
    answer = REGIONS[int(cy // third)][int(cx // third)]
    question = (
        f"Where in the image is the {color} shape? Answer with one of: top-left, top, top-right, left, "
        f"center, right, bottom-left, bottom, bottom-right."
    )
    return image, question, answer, {"color": color}


MAKERS = {"count": make_count, "compare_sizes": make_compare, "bar_value": make_bar, "locate": make_locate}
