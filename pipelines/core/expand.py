"""Derived rows: how a stage turns one record into several (a video into its scene clips).

The Stage contract is "same rows in, same rows out"; an expanding stage keeps every input row (the
parent keeps its fate in the ledger, e.g. ``drop_reason="video_scenes_v1:split_into_clips"``) and
appends derived rows. Each derived row is a copy of its parent with some columns replaced, a new
id, ``parent_id`` set to the parent's id, the parent's ``_partition``/``_order`` and a
``_suborder`` that ranks it under its parent (three levels of 20-bit ranks in one int64, so a
clip's own derived rows sort between it and the next clip), so the writer's sort
(``source.in_order``) puts it right after its parent on every executor, and resumed runs write the
same shards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.source import SUBORDER_COL
from fusionforge.pipelines.core.stage import set_column

MAX_CHILDREN = 2**20
LEVEL_SHIFTS = (40, 20, 0)  # a suborder holds up to three levels of 20-bit ranks: parent, child, grandchild


def derive_rows(
    batch: pa.Table, parents: Sequence[int], ids: Sequence[str], updates: Mapping[str, Sequence[Any]]
) -> pa.Table:
    """``batch`` followed by one derived row per entry of ``parents`` (row indices into ``batch``).

    Args:
        batch: the stage's batch, parents included (already updated by the stage).
        parents: the parent row of each derived row; a parent's derived rows must be consecutive.
        ids: the new ids, unique and derived from the parent id (never from timing).
        updates: column -> one value per derived row; a column the batch lacks is added (null for
            the batch's own rows).

    Returns:
        The rows of ``batch`` (``_suborder`` 0 unless derived earlier) then the derived rows, ranked.
    """
    if len(ids) != len(parents) or any(len(v) != len(parents) for v in updates.values()):
        raise ValueError("derive_rows needs one id and one value per column for every derived row")
    if not parents:
        return batch
    batch = _with_suborder(batch, pa.array([0] * batch.num_rows, pa.int64()))
    children = batch.take(pa.array(parents, pa.int64()))
    parent_ids = children.column(S.ID)
    children = set_column(children, S.ID, pa.array(ids, pa.string()))
    children = set_column(children, S.PARENT_ID, parent_ids.cast(pa.string()))
    for name, values in updates.items():
        kind = batch.schema.field(name).type if name in batch.column_names else None
        children = set_column(children, name, pa.array(list(values), kind))
        if name not in batch.column_names:
            batch = set_column(batch, name, pa.nulls(batch.num_rows, children.schema.field(name).type))
    base = children.column(SUBORDER_COL).to_pylist()
    suborders = [b + (k << _child_shift(b)) for b, k in zip(base, _counts(parents))]
    children = set_column(children, SUBORDER_COL, pa.array(suborders, pa.int64()))
    return pa.concat_tables([batch, children.select(batch.column_names)], promote_options="permissive")


def _child_shift(suborder: int) -> int:
    """Where a child's rank goes: one level below its parent's lowest used level (so order is lexicographic)."""
    if suborder == 0:
        return LEVEL_SHIFTS[0]
    for upper, lower in zip(LEVEL_SHIFTS, LEVEL_SHIFTS[1:]):
        if suborder % (1 << upper) == 0:
            return lower
    raise ValueError("derived rows may nest at most three levels deep")


def _counts(parents: Sequence[int]) -> list[int]:
    """1, 2, ... within each parent's run of derived rows."""
    out, previous, count = [], None, 0
    for parent in parents:
        count = count + 1 if parent == previous else 1
        if count >= MAX_CHILDREN:
            raise ValueError(f"a record may have at most {MAX_CHILDREN - 1} derived rows")
        previous = parent
        out.append(count)
    return out


def _with_suborder(table: pa.Table, values: pa.Array) -> pa.Table:
    if S.PARENT_ID not in table.column_names:
        table = table.append_column(S.PARENT_ID, pa.nulls(table.num_rows, pa.string()))
    if SUBORDER_COL in table.column_names:  # an earlier expanding stage numbered these rows
        filled = pc.fill_null(table.column(SUBORDER_COL), 0)
        return table.set_column(table.column_names.index(SUBORDER_COL), SUBORDER_COL, filled)
    return table.append_column(SUBORDER_COL, values)
