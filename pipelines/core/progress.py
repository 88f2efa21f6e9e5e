"""One progress callback for every step: ``progress(event, data)``.

A step tells its listener the plan (``PLAN``: ``total`` units of work, ``done`` of them finished by
an earlier run), each finished unit (``UNIT``: the unit's summary) and each phase it enters
(``PHASE``: ``name``). The audit counts its work in rows: its plan's total is rows, and each unit's
summary has its ``rows``. A step may add events of its own (rft:
``round``, ``sample``, ``round_done``). A listener handles the events it knows and ignores the
rest, so a step can tell more without breaking its listeners.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Progress = Callable[[str, dict[str, Any]], None]
PLAN = "plan"
UNIT = "unit"
PHASE = "phase"


def quiet(event: str, data: dict[str, Any]) -> None:
    """The listener that ignores every event (when the caller gives none)."""


def phase(progress: Progress, name: str) -> None:
    """Tell ``progress`` that a step enters phase ``name``."""
    progress(PHASE, {"name": name})


def plan(progress: Progress, total: int, done: int = 0) -> None:
    """Tell ``progress`` the work in all (``total``) and how much of it is already ``done``."""
    progress(PLAN, {"total": total, "done": done})
