"""Plain Ray tasks in a bounded window: what the executor's partition tasks and dedupe's shuffle share.

Submitting every task at once makes the driver hold one reference (and Ray one pending task) per
item, which grows with the corpus; here at most ``window`` are out at a time and each is handed
back as it finishes, so the driver's share stays flat however many items there are.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

Item = TypeVar("Item")


def default_window(ray: Any) -> int:
    """Twice the cluster's CPUs: every CPU busy, and the next task already queued at its raylet."""
    return 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))


def windowed(ray: Any, submit: Callable[[Item], Any], todo: deque[Item], window: int) -> Iterator[tuple[Item, Any]]:
    """``submit(item)`` (which returns an object reference) for the items of ``todo``, at most ``window``
    unfinished at once; yields ``(item, reference)`` in the order they finish. The caller may append
    to ``todo`` meanwhile (a retry); if it stops early (an error), the tasks still out are cancelled."""
    running: dict[Any, Item] = {}
    try:
        while todo or running:
            while todo and len(running) < window:
                item = todo.popleft()
                running[submit(item)] = item
            (ref,), _ = ray.wait(list(running), num_returns=1)
            yield running.pop(ref), ref
    finally:
        for ref in running:
            ray.cancel(ref)
