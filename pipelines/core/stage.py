"""Stages: small callable classes over ``pyarrow.Table`` batches.

Ray Data runs a stateful stage (a model, a tokenizer) as an actor pool, so its ``__init__`` runs
once per actor; a stateless stage runs in tasks. Either way the maths lives in pure functions that
tests call without Ray. A stage never deletes rows: it adds columns and may set ``drop_reason``
(decided) or ``error`` (could not process), so every input keeps its fate.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE, check_bounds, within


@dataclass(frozen=True)
class Resources:
    """What one instance of a stage needs from the scheduler."""

    num_cpus: float = within(NON_NEGATIVE, 1.0)  # fractions let Ray pack several instances on one CPU
    num_gpus: float = within(NON_NEGATIVE, 0.0)
    concurrency: int | None = within(COUNT, None)  # actor-pool size for stateful stages (None: one per CPU)
    batch_size: int = within(COUNT, 256)

    def __post_init__(self) -> None:
        check_bounds(self)


class Stage(ABC):
    """A callable over a record batch; ``name`` is its versioned registry name."""

    name: ClassVar[str]
    resources: ClassVar[Resources] = Resources()
    stateful: ClassVar[bool] = False  # True: heavy state in __init__, run as Ray actors
    expands: ClassVar[bool] = False  # True: may add derived rows (see ``core/expand.py``)

    @abstractmethod
    def __call__(self, batch: pa.Table) -> pa.Table:
        """Transform one batch; return the same rows (and may add columns).

        An expanding stage (``expands = True``) also appends derived rows (e.g. the clips of a video)
        built with ``core.expand.derive_rows``, so each keeps its parent's place in the input order.
        """


@dataclass(frozen=True)
class StageSpec:
    """A stage class plus the keyword arguments to build it: what executors ship to workers."""

    stage: type[Stage]
    params: Mapping[str, Any] = field(default_factory=dict)
    resources: Resources | None = None  # overrides the class's resources (e.g. num_gpus asked in a config)

    def build(self) -> Stage:
        return self.stage(**self.params)

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def effective_resources(self) -> Resources:
        return self.resources or self.stage.resources

    def describe(self) -> dict[str, Any]:
        """The resolved config entry written next to outputs."""
        entry = {"stage": self.stage.name, **dict(self.params)}
        if self.resources is not None:
            entry["resources"] = dataclasses.asdict(self.resources)
        return entry


ERROR_FIELD = "error"  # the score field through which a scoring stage reports rows it could not score


class ScoringStage(Stage):
    """Adds namespaced score columns and a drop decision; scoring never removes a row.

    Subclasses implement ``score`` (vectorised over the rows to score) and ``decide`` (a reason
    per row, or None to keep). Rows that already carry an ``error`` are not scored; rows dropped by
    an earlier stage are scored too, so thresholds can be re-tuned later from stored scores. A stage
    that only judges some rows (say, text documents but not image captions) says which in
    ``applies``; the others get null scores and no decision. A row that cannot be scored (its media
    will not decode, a tool timed out) gets the score field ``error`` = ``"kind: detail"``: it
    becomes the row's ``error`` (prefixed with the stage name), not a score column, and the row gets
    no decision.
    """

    def applies(self, batch: pa.Table) -> pa.Array | None:
        """A boolean mask of the rows this stage judges, or None for all of them."""
        return None

    @abstractmethod
    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        """Scores for every row of ``batch``, keyed by field name (namespaced on merge)."""

    @abstractmethod
    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        """A drop reason (without the stage prefix) per row, or None to keep it."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        wanted = pc.invert(batch.column(S.ERROR).is_valid())
        applies = self.applies(batch)
        if applies is not None:
            wanted = pc.and_(wanted, pc.fill_null(applies, False))
        positions = pc.indices_nonzero(wanted)
        subset = batch.take(positions)
        scores = self.score(subset) if subset.num_rows else {}
        failures = scores.pop(ERROR_FIELD, None)
        reasons = self.decide(scores) if subset.num_rows else []
        for field_name, values in scores.items():
            full = scatter(values, positions, batch.num_rows)
            batch = set_column(batch, S.stage_column(self.name, field_name), full)
        if failures is not None:
            failed = failures.to_pylist()
            reasons = [None if f is not None else r for r, f in zip(reasons, failed)]
            errors = pa.array([f"{self.name}:{f}" if f is not None else None for f in failed], pa.string())
            batch = add_errors(batch, scatter(errors, positions, batch.num_rows))
        prefixed = pa.array([f"{self.name}:{r}" if r else None for r in reasons], pa.string())
        return add_drop_reasons(batch, scatter(prefixed, positions, batch.num_rows))


def scatter(values: pa.Array, positions: pa.Array, length: int) -> pa.Array:
    """Place ``values[i]`` at row ``positions[i]`` of a ``length``-row array, nulls elsewhere."""
    if len(positions) == length:
        return values
    index = [None] * length
    for i, pos in enumerate(positions.to_pylist()):
        index[pos] = i
    return values.take(pa.array(index, pa.int64()))


def set_column(batch: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Add or replace column ``name``."""
    if name in batch.column_names:
        return batch.set_column(batch.column_names.index(name), name, values)
    return batch.append_column(name, values)


def add_drop_reasons(batch: pa.Table, reasons: pa.Array) -> pa.Table:
    """Keep the first reason a row was given: an earlier stage's decision is not overwritten."""
    merged = pc.coalesce(batch.column(S.DROP_REASON), reasons)
    return set_column(batch, S.DROP_REASON, merged)


def add_errors(batch: pa.Table, errors: pa.Array) -> pa.Table:
    """Record processing errors; the first error a row got is kept."""
    return set_column(batch, S.ERROR, pc.coalesce(batch.column(S.ERROR), errors))
