"""The code an assistant writes to answer an image question through a ``python`` tool.

Every built-in task runs its cells in one stateful session: look at the image (size, main
colours), then binarise it (by hue for a named colour, by distance from the background, or dark
pixels for a chart frame), find 8-connected components with a breadth-first search, measure them
and print ``result: <answer>``. ``compare_sizes`` splits the last part in two, as a person would:
find the regions, then crop each region's bounding box out of the image and measure the shape in
the crop. The final answer is read from the last printed ``result:`` line (what the code really
found), then checked against the ground truth. A user QA row may bring its own ``program``
(a list of ``{"say", "code"}`` steps) for tasks beyond the built-ins.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

HUE_RANGES = {
    "red": "(hue <= 12) | (hue >= 243)",
    "yellow": "(hue >= 25) & (hue <= 50)",
    "green": "(hue >= 70) & (hue <= 110)",
    "blue": "(hue >= 140) & (hue <= 185)",
}
RESULT = re.compile(r"^result:\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Step:
    """What the assistant says, and the code it sends to the ``python`` tool."""

    say: str
    code: str


@dataclass(frozen=True)
class Program:
    steps: list[Step]
    final: str  # the final answer template; ``{answer}`` is the code's result


class UnsupportedTask(ValueError):
    """A QA row this module cannot write code for."""


INSPECT = """from PIL import Image
import numpy as np

img = Image.open({path!r}).convert("RGB")
pixels = np.asarray(img)
print("size (width, height):", img.size)
colors, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
order = np.argsort(counts)[::-1][:6]
for color, count in zip(colors[order], counts[order]):
    print("colour", tuple(int(c) for c in color), "pixels", int(count))"""

COMPONENTS = '''from collections import deque

def components(mask, min_area=12):
    """8-connected regions of a boolean mask, as (area, (cx, cy), (x0, y0, x1, y1))."""
    height, width = mask.shape
    seen = np.zeros(mask.shape, dtype=bool)
    regions = []
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        seen[y, x] = True
        queue, points = deque([(y, x)]), []
        while queue:
            cy, cx = queue.popleft()
            points.append((cy, cx))
            for ny in (cy - 1, cy, cy + 1):
                for nx in (cx - 1, cx, cx + 1):
                    if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        if len(points) >= min_area:
            ys, xs = np.array(points).T
            regions.append((len(points), (float(xs.mean()), float(ys.mean())),
                            (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))))
    return regions
'''

HSV = """hsv = np.asarray(img.convert("HSV")).astype(int)
hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
"""


def _colour_mask(color: str) -> str:
    if color not in HUE_RANGES:
        raise UnsupportedTask(f"unsupported_color: {color!r}; built-in tasks know {', '.join(sorted(HUE_RANGES))}")
    return f"mask = ({HUE_RANGES[color]}) & (sat > 90) & (val > 70)  # {color} pixels\n"


def _count(params: dict[str, Any]) -> tuple[list[str], str]:
    color = params.get("color", "")
    code = (
        COMPONENTS
        + "\n"
        + HSV
        + _colour_mask(color)
        + f'''print("{color} pixels:", int(mask.sum()))
regions = components(mask)
for area, centre, box in regions:
    print("region: area", area, "centre", tuple(round(c) for c in centre), "box", box)
print("result:", len(regions))'''
    )
    return [code], f"There {{is_are}} {{answer}} {color} shape{{plural}} in the image."


def _compare(_params: dict[str, Any]) -> tuple[list[str], str]:
    find = (
        COMPONENTS
        + """
background = colors[order[0]].astype(int)
mask = np.abs(pixels.astype(int) - background).sum(axis=2) > 60  # anything that is not background
regions = sorted(components(mask), key=lambda region: region[1][0])  # left to right
for area, centre, box in regions:
    print("region: area", area, "centre", tuple(round(c) for c in centre), "box", box)"""
    )
    crop = """measured = {}
for side, (_, _, (x0, y0, x1, y1)) in (("left", regions[0]), ("right", regions[-1])):
    crop = img.crop((x0, y0, x1 + 1, y1 + 1))  # the region's bounding box, edges included
    shape = np.abs(np.asarray(crop).astype(int) - background).sum(axis=2) > 60
    measured[side] = int(shape.sum())
    print(f"{side} crop {crop.size[0]}x{crop.size[1]}: {measured[side]} shape pixels, {shape.mean():.0%} of the crop")
print("result:", "left" if measured["left"] > measured["right"] else "right")"""
    return [find, crop], "The shape on the {answer} is larger."


def _bar(params: dict[str, Any]) -> tuple[list[str], str]:
    index, axis_max = int(params.get("bar_index", 1)), params.get("axis_max", 100)
    code = (
        HSV
        + f"""dark = pixels.max(axis=2) < 80
frame_rows = np.nonzero(dark.sum(axis=1) > dark.shape[1] // 2)[0]
top_edge, bottom_edge = int(frame_rows.min()), int(frame_rows.max())
print("plot frame rows:", top_edge, "to", bottom_edge)
bars = (sat > 90) & (val > 70)
columns = np.nonzero(bars.any(axis=0))[0]
runs, start = [], columns[0]
for previous, column in zip(columns[:-1], columns[1:]):
    if column != previous + 1:
        runs.append((start, previous))
        start = column
runs.append((start, columns[-1]))
values = []
for number, (x0, x1) in enumerate(runs, start=1):
    bar_top = int(np.nonzero(bars[:, x0:x1 + 1].any(axis=1))[0].min())
    value = (bottom_edge - bar_top) / (bottom_edge - top_edge) * {axis_max}
    values.append(value)
    print(f"bar {{number}}: columns {{x0}}-{{x1}}, top row {{bar_top}}, value {{value:.1f}}")
print("result:", round(values[{index - 1}]))"""
    )
    return [code], f"Bar {index} has a value of {{answer}}."


def _locate(params: dict[str, Any]) -> tuple[list[str], str]:
    color = params.get("color", "")
    code = (
        COMPONENTS
        + "\n"
        + HSV
        + _colour_mask(color)
        + """regions = components(mask)
area, (cx, cy), box = max(regions)  # the largest region of that colour
width, height = img.size
column = ["left", "center", "right"][min(2, int(3 * cx / width))]
row = ["top", "middle", "bottom"][min(2, int(3 * cy / height))]
print("centre:", (round(cx), round(cy)), "row:", row, "column:", column)
if row == "middle":
    print("result:", column)
elif column == "center":
    print("result:", row)
else:
    print("result:", f"{row}-{column}")"""
    )
    return [code], f"The {color} shape is in the {{answer}} part of the image."


TASK_CODE = {"count": _count, "compare_sizes": _compare, "bar_value": _bar, "locate": _locate}
LOOK = (
    "Let me open the image and check its size and main colours.",
    "I'll load the image file first and look at which colours it contains.",
    "First, I'll read the image and list its most common colours.",
)
SAY = {  # per code cell after the first look: what the assistant may say before it
    "count": [
        (
            "Now I'll binarise the {color} pixels and count the connected regions.",
            "Next I'll make a mask of {color} pixels and count its connected components.",
        )
    ],
    "compare_sizes": [
        (
            "I'll separate the shapes from the background and find their connected regions.",
            "Now I'll find the connected regions that differ from the background.",
        ),
        (
            "Now I'll crop each shape's bounding box and measure the shape inside the crop.",
            "Next I'll cut out each region's box and count the shape's pixels in it.",
        ),
    ],
    "bar_value": [
        (
            "I'll locate the plot frame and measure the height of each bar in pixels.",
            "Now I'll find the frame's top and bottom edges and convert each bar's height to axis units.",
        )
    ],
    "locate": [
        (
            "I'll find the {color} region and see which part of the image its centre falls in.",
            "Next I'll mask the {color} pixels and compute the centre of that region.",
        )
    ],
}


def build_program(task: str, params: dict[str, Any], image_path: str, rng: random.Random) -> Program:
    """The steps for a built-in ``task`` on the image at ``image_path`` (as the conversation names it)."""
    if task not in TASK_CODE:
        raise UnsupportedTask(
            f"unknown_task: {task!r}; built-in tasks are {', '.join(TASK_CODE)} (or give the QA row a 'program')"
        )
    cells, final = TASK_CODE[task](params)
    says = [rng.choice(options).format(color=params.get("color", "")) for options in SAY[task]]
    look = Step(rng.choice(LOOK), INSPECT.format(path=image_path))
    return Program([look, *(Step(say, code) for say, code in zip(says, cells))], final)


def user_program(steps: Any, final: Any) -> Program:
    """A QA row's own ``program``: ``[{"say": ..., "code": ...}, ...]`` and an optional ``final`` template."""
    if (
        not isinstance(steps, list)
        or not steps
        or not all(isinstance(s, dict) and isinstance(s.get("code"), str) for s in steps)
    ):
        raise UnsupportedTask('bad_program: \'program\' must be a non-empty list of {"say", "code"} objects')
    template = final if isinstance(final, str) and "{answer}" in final else "The answer is {answer}."
    return Program(
        [Step(str(s.get("say") or "Let me run some code on the image."), s["code"]) for s in steps], template
    )


def extract_result(output: str) -> str | None:
    """The value of the last ``result: ...`` line the code printed."""
    found = RESULT.findall(output)
    return found[-1] if found else None


def answers_match(predicted: str, expected: str, tolerance: float = 0.0) -> bool:
    """Numbers within ``tolerance``; otherwise equal text after case-folding and trimming."""
    try:
        return abs(float(predicted) - float(expected)) <= tolerance
    except ValueError:
        return predicted.strip().rstrip(".").casefold() == expected.strip().rstrip(".").casefold()


def final_message(template: str, answer: str) -> str:
    """The assistant's closing turn, built from the answer the code printed."""
    plural = answer.strip() != "1"
    return (
        template.replace("{is_are}", "are" if plural else "is")
        .replace("{plural}", "s" if plural else "")
        .replace("{answer}", answer)
    )
