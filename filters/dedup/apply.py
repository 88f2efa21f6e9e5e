"""``dedupe_apply_v1``: turn the dedupe decisions joined onto each record into drop reasons and errors.

The decisions (computed by the global phase of ``fusionforge dedupe``) arrive as columns
``dedupe__cluster``, ``dedupe__kept_id``, ``dedupe__similarity``, ``dedupe__duplicate`` (``exact`` or
``near`` for a dropped copy) and ``dedupe__error``. A dropped copy gets
``drop_reason = "dedupe:{exact|near}_dup_of:{kept id}"``; a record whose media could not be read
gets its error. The columns stay in the output (and in ``rejected/``) for later audits.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, Stage, add_drop_reasons, add_errors

PREFIX = "dedupe"
DECISION_COLUMNS = ("dedupe__cluster", "dedupe__kept_id", "dedupe__similarity", "dedupe__duplicate", "dedupe__error")


def drop_reason(duplicate: str, kept_id: str) -> str:
    """``dedupe:exact_dup_of:<id>`` or ``dedupe:near_dup_of:<id>``."""
    return f"{PREFIX}:{duplicate}_dup_of:{kept_id}"


@register
class DedupeApply(Stage):
    """Sets ``drop_reason`` / ``error`` from the dedupe decision columns; never removes a row."""

    name: ClassVar[str] = "dedupe_apply_v1"
    resources: ClassVar[Resources] = Resources(batch_size=4096)

    def __call__(self, batch: pa.Table) -> pa.Table:
        duplicate = batch.column("dedupe__duplicate").to_pylist()
        kept = batch.column("dedupe__kept_id").to_pylist()
        reasons = [drop_reason(d, k) if d is not None else None for d, k in zip(duplicate, kept)]
        batch = add_drop_reasons(batch, pa.array(reasons, pa.string()))
        return add_errors(batch, batch.column("dedupe__error").cast(pa.string()))


def empty_decisions(n: int) -> dict[str, pa.Array]:
    """Decision columns for ``n`` records that no cluster touched."""
    return {
        "dedupe__cluster": pa.nulls(n, pa.int64()),
        "dedupe__kept_id": pa.nulls(n, pa.string()),
        "dedupe__similarity": pa.nulls(n, pa.float64()),
        "dedupe__duplicate": pa.nulls(n, pa.string()),
        "dedupe__error": pa.nulls(n, pa.string()),
    }
