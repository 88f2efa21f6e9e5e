"""The window loop: draw windows in the driver, pack them in parallel, write them in order.

Windows are packed by workers (Ray tasks, which get the items' numbers only) while the driver draws
the next ones; at most ``lag`` windows are in flight. The driver turns packed windows into plan rows
as soon as they hold ``FLUSH_ITEMS`` items (one pass of Arrow work for several small windows, one
window at a time for large ones, so the windows waiting for their rows are bounded by items). The
leftovers of window w (items that found no room, the unused part of the last long document) go back
to the streams before window w+lag is drawn, whatever the timing, so the plan depends only on the
inputs and the seed: Ray and in-process runs give identical plans.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from fusionforge.mixers.packing.items import ItemBatch
from fusionforge.mixers.packing.plan_table import WindowPlan, leftovers, plan_rows, plan_window
from fusionforge.mixers.packing.windows import Window, WindowDrawer

# Items of packed windows turned into plan rows at once. A window of 256 x 4,096 tokens at a vision share
# of 0.1 holds about 17,000 items (3 MB of numbers and metadata, several times that while its rows are
# built); flushing every ``lag`` windows held 8 of them and grew the driver by about 40 MB at the flush.
FLUSH_ITEMS = 16_384


@dataclass(frozen=True)
class PlanParams:
    seq_len: int
    window: int
    seq_vision_cap: int | None
    seed: int
    lag: int = 8


def _pack(window: Window, params: PlanParams, runner_call: Callable[..., Any]) -> Any:
    items = window.items  # a worker gets the numbers only
    return runner_call(
        window.index,
        window.full,
        items.kind.copy(),
        items.size.copy(),
        items.vision.copy(),
        params.seq_len,
        params.window,
        params.seq_vision_cap,
        params.seed,
    )


class InlineRunner:
    """Packs windows in this process (tests, small jobs)."""

    def submit(self, window: Window, params: PlanParams) -> WindowPlan:
        return _pack(window, params, plan_window)

    def get(self, handle: WindowPlan) -> WindowPlan:
        return handle


class RayRunner:
    """Packs windows as Ray tasks (one CPU each)."""

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self._remote = ray.remote(num_cpus=1)(plan_window)

    def submit(self, window: Window, params: PlanParams) -> Any:
        return _pack(window, params, self._remote.remote)

    def get(self, handle: Any) -> WindowPlan:
        return self.ray.get(handle)


def run_windows(
    drawer: WindowDrawer, params: PlanParams, runner: InlineRunner | RayRunner, sink: Callable[[pa.Table], None]
) -> dict[str, Iterator[ItemBatch]]:
    """Draw, pack and sink every window; return what is left in the streams by kind, to be read batch by batch.

    ``sink`` gets the plan rows in order, a few windows at a time (the ``window`` column tells them apart).
    """
    inflight: deque[tuple[Window, Any]] = deque()
    packed: list[tuple[ItemBatch, WindowPlan]] = []

    def flush() -> None:
        if packed:
            sink(plan_rows(packed, params.seq_len))
            packed.clear()
            # Arrow's allocator (mimalloc) keeps the pages of freed buffers: the driver grew window after window
            # while Arrow's live bytes stayed near 15 MB (1M-record pack on Ray, traced: 405 MB, 354 with the release).
            pa.default_memory_pool().release_unused()

    def finish() -> None:
        window, handle = inflight.popleft()
        plan = runner.get(handle)
        drawer.settle(window, int(plan.tokens.sum()), int(plan.vision.sum()))
        drawer.give_back(leftovers(window.items, plan))
        packed.append((window.items, plan))
        if sum(len(items) for items, _ in packed) >= FLUSH_ITEMS or len(packed) >= params.lag:
            flush()

    while True:
        window = drawer.draw(allow_partial=not inflight)
        if window is None:  # the streams ran dry: what is in flight comes back before the last draw
            if inflight:
                while inflight:
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
    flush()
    return {"vision": drawer.vision.rest(), "text": drawer.text.rest(), "long": drawer.long.rest()}
