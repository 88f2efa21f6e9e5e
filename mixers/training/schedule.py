"""Which sequences a reader yields, in which micro-batches, and where a resumed run starts.

Ranks split every planned window (a global batch that holds the planned vision share): rank ``r``
of ``R`` takes the window's sequences ``r, r + R, ...`` (the plan interleaves vision-rich and
vision-poor sequences, so every stride keeps the share). A window whose size is not a multiple of
``R`` (usually only the last, smaller one) is topped up by repeating its first sequences, as
``DistributedSampler`` does, so that every rank takes the same number of steps.

A rank's stream is cut into micro-batches of ``batch_size`` sequences, numbered from 0. DataLoader
workers share them round-robin from the position the iteration starts at (worker ``w`` of ``W``
takes ``start + w, start + w + W, ...``), which is the order the DataLoader hands batches out in: the
batches are the same whatever the number of workers. A position is the number of the next
micro-batch; it is all a resumed run needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from fusionforge.pipelines.core.errors import ConfigError


def rank_sequences(plan_path: str, rank: int, world_size: int) -> np.ndarray:
    """The ``sequence_id``s rank ``rank`` of ``world_size`` yields, in order (see the module docstring)."""
    table = pq.read_table(plan_path, columns=["sequence_id", "window"])
    ids, windows = table.column("sequence_id").to_numpy(), table.column("window").to_numpy()
    cuts = np.flatnonzero(np.diff(windows)) + 1
    parts = []
    for window in np.split(ids, cuts):
        size = -(-len(window) // world_size) * world_size
        parts.append(np.resize(window, size)[rank::world_size])
    return np.concatenate(parts) if parts else ids


@dataclass(frozen=True)
class Position:
    """Where an iteration starts: the next micro-batch, and whether it is one worker's own (``workers`` > 1)."""

    next: int = 0
    workers: int = 1  # 1: a global position; W: a position saved inside worker ``next % W`` of W workers

    def first_for(self, worker: int, workers: int) -> int:
        """The first micro-batch worker ``worker`` of ``workers`` yields."""
        if self.workers == 1:
            return self.next + worker
        if self.workers != workers:
            raise ConfigError(
                f"this state was saved by one of {self.workers} DataLoader workers and cannot resume with "
                f"{workers}: turn the loader's state into a global position with global_position() first"
            )
        return self.next


def check_state(state: dict[str, Any], expected: dict[str, Any]) -> Position:
    """The position of a saved state, refused when it was saved for another rank, world size or batch size."""
    wrong = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
    if wrong:
        said = ", ".join(f"{k}={saved!r} (now {now!r})" for k, (saved, now) in wrong.items())
        raise ConfigError(f"the state was saved with {said}; resume with the same settings")
    return Position(int(state["next"]), int(state.get("workers", 1)))


def global_position(loader_state: dict[str, Any]) -> dict[str, Any]:
    """A torchdata ``StatefulDataLoader`` state (any number of workers) as a global dataset state.

    Each worker's state holds the next micro-batch it owns; the batches handed out so far are exactly
    those below the smallest of them. Load the result with ``PackedDataset.load_state_dict`` and build
    a new loader with any number of workers.
    """
    snapshot = loader_state.get("_snapshot", {})
    workers = snapshot.get("_worker_snapshots") or {}
    states = [w["dataset_state"] for w in workers.values() if w.get("dataset_state")]
    if not states:  # a loader without workers keeps the dataset's own state
        states = [snapshot.get("_main_snapshot", {}).get("dataset_state") or loader_state.get("dataset_state")]
    if not states or states[0] is None:
        raise ConfigError("this loader state holds no PackedDataset state")
    return {**states[0], "next": min(int(s["next"]) for s in states), "workers": 1}
