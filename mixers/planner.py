"""The window loop: draw windows in the driver, pack them in parallel, write them in order.

Windows are packed by workers (Ray tasks) while the driver draws the next ones; at most ``lag``
windows are in flight. The leftovers of window w (items that found no room, the unused part of the
last long document) go back to the streams before window w+lag is drawn, whatever the timing, so
the plan depends only on the inputs and the seed: Ray and in-process runs give identical plans.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fusionforge.mixers.packing import LONG, TEXT, VISION
from fusionforge.mixers.windows import Item, Window, WindowDrawer, plan_window

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class PlanParams:
    seq_len: int
    window: int
    seq_vision_cap: int | None
    seed: int
    lag: int = 8


class InlineRunner:
    """Packs windows in this process (tests, small jobs)."""

    def submit(self, window: Window, params: PlanParams) -> tuple[Rows, list[Item]]:
        return plan_window(window, params.seq_len, params.window, params.seq_vision_cap, params.seed)

    def get(self, handle: tuple[Rows, list[Item]]) -> tuple[Rows, list[Item]]:
        return handle


class RayRunner:
    """Packs windows as Ray tasks (one CPU each)."""

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self._remote = ray.remote(num_cpus=1)(plan_window)

    def submit(self, window: Window, params: PlanParams) -> Any:
        return self._remote.remote(window, params.seq_len, params.window, params.seq_vision_cap, params.seed)

    def get(self, handle: Any) -> tuple[Rows, list[Item]]:
        return self.ray.get(handle)


def run_windows(drawer: WindowDrawer, params: PlanParams, runner: InlineRunner | RayRunner,
                sink: Callable[[Rows], None]) -> dict[str, list[Item]]:
    """Draw, pack and sink every window; return what is left in the streams (the surplus) by kind."""
    inflight: deque[tuple[Window, Any]] = deque()

    def finish() -> None:
        window, handle = inflight.popleft()
        rows, leftovers = runner.get(handle)
        drawer.settle(window, sum(r["tokens"] for r in rows), sum(r["vision_tokens"] for r in rows))
        drawer.give_back(leftovers)
        sink(rows)

    while True:
        window = drawer.draw(allow_partial=not inflight)
        if window is None:
            if inflight:
                finish()
                continue
            break
        inflight.append((window, runner.submit(window, params)))
        if not window.full:
            break
        if len(inflight) >= params.lag:
            finish()
    while inflight:
        finish()
    return {"vision": list(drawer.vision.drain()), "text": list(drawer.text.drain()),
            "long": list(drawer.long.drain())}


__all__ = ["LONG", "TEXT", "VISION", "InlineRunner", "PlanParams", "RayRunner", "run_windows"]
