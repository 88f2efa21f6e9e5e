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

import pyarrow as pa
import pyarrow.compute as pc
from fusionforge.mixers.items import ItemBatch
from fusionforge.mixers.plan_table import plan_window
from fusionforge.mixers.windows import Window, WindowDrawer

Planned = tuple[pa.Table, ItemBatch]


@dataclass(frozen=True)
class PlanParams:
    seq_len: int
    window: int
    seq_vision_cap: int | None
    seed: int
    lag: int = 8


class InlineRunner:
    """Packs windows in this process (tests, small jobs)."""

    def submit(self, window: Window, params: PlanParams) -> Planned:
        return plan_window(window, params.seq_len, params.window, params.seq_vision_cap, params.seed)

    def get(self, handle: Planned) -> Planned:
        return handle


class RayRunner:
    """Packs windows as Ray tasks (one CPU each)."""

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self._remote = ray.remote(num_cpus=1)(plan_window)

    def submit(self, window: Window, params: PlanParams) -> Any:
        return self._remote.remote(window, params.seq_len, params.window, params.seq_vision_cap, params.seed)

    def get(self, handle: Any) -> Planned:
        return self.ray.get(handle)


def run_windows(drawer: WindowDrawer, params: PlanParams, runner: InlineRunner | RayRunner,
                sink: Callable[[pa.Table], None]) -> dict[str, ItemBatch]:
    """Draw, pack and sink every window (its plan rows as a table); return what is left in the streams by kind."""
    inflight: deque[tuple[Window, Any]] = deque()

    def finish() -> None:
        window, handle = inflight.popleft()
        rows, leftovers = runner.get(handle)
        drawer.settle(window, _total(rows, "tokens"), _total(rows, "vision_tokens"))
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
    return {"vision": drawer.vision.drain(), "text": drawer.text.drain(), "long": drawer.long.drain()}


def _total(rows: pa.Table, column: str) -> int:
    return int(pc.sum(rows.column(column)).as_py() or 0)
