"""Fold ledger rows into counts per (step, source, modality, status, reason) plus example ids per reason.

Ledgers are the funnel's source of truth: every input record of a step has one row with its fate.
Examples are the ``EXAMPLES`` smallest ids per (step, reason, source), so they do not depend on how a
ledger was split or in which order parts were read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.pipelines.core.ledger import reason_kinds

EXAMPLES = 3
CountKey = tuple[str, str, str, str, str]  # step, source, modality, status, reason ("" when kept)
ExampleKey = tuple[str, str, str]  # step, reason, source
LEDGER_COLUMNS = ("id", "source", "modality", "status", "reason", "step")


@dataclass
class LedgerState:
    counts: dict[CountKey, int] = field(default_factory=dict)
    examples: dict[ExampleKey, list[str]] = field(default_factory=dict)

    def fold(self, batch: pa.RecordBatch, default_step: str) -> None:
        """Add one batch of ledger rows; rows without a ``step`` take ``default_step``."""
        if batch.num_rows == 0:
            return
        names = batch.schema.names
        step = (
            pc.fill_null(batch.column("step"), default_step)
            if "step" in names
            else pa.array([default_step] * batch.num_rows)
        )
        reason = pc.fill_null(reason_kinds(batch.column("reason").cast(pa.string())), "")
        table = pa.table(
            {
                "step": step,
                "source": pc.fill_null(batch.column("source"), "unknown"),
                "modality": pc.fill_null(batch.column("modality"), "unknown"),
                "status": batch.column("status"),
                "reason": reason,
                "id": batch.column("id"),
            }
        )
        keys = ["step", "source", "modality", "status", "reason"]
        counts = table.group_by(keys).aggregate([([], "count_all")])
        for row in zip(*(counts.column(k).to_pylist() for k in keys), counts.column("count_all").to_pylist()):
            self.counts[row[:5]] = self.counts.get(row[:5], 0) + row[5]
        self._examples(table.filter(pc.not_equal(table.column("reason"), "")))

    def _examples(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        order = pc.sort_indices(
            table,
            sort_keys=[("step", "ascending"), ("reason", "ascending"), ("source", "ascending"), ("id", "ascending")],
        )
        table = table.take(order)
        keys = list(zip(*(table.column(k).to_pylist() for k in ("step", "reason", "source"))))
        starts = np.flatnonzero([i == 0 or keys[i] != keys[i - 1] for i in range(len(keys))])
        ids = table.column("id")
        for start in starts.tolist():
            key = keys[start]
            stop = start
            while stop < len(keys) and stop - start < EXAMPLES and keys[stop] == key:
                stop += 1
            self._keep(key, ids.slice(start, stop - start).to_pylist())

    def _keep(self, key: ExampleKey, ids: list[str]) -> None:
        self.examples[key] = sorted(set(self.examples.get(key, [])) | set(ids))[:EXAMPLES]

    def merge(self, other: LedgerState) -> LedgerState:
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        for key, ids in other.examples.items():
            self._keep(key, ids)
        return self

    def scaled(self, factor: float) -> LedgerState:
        """Counts of a whole estimated from a sample (fractional; rounded when reported)."""
        return LedgerState({k: n * factor for k, n in self.counts.items()}, dict(self.examples))

    def steps(self) -> list[str]:
        return sorted({key[0] for key in self.counts})
