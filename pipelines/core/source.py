"""A job's input: records split into numbered partitions, and the columns that keep their order.

Every executor tags each batch it reads with its partition and running order (``tag_batches``) and
hands each partition's rows to the writer sorted back into input order (``in_order``), so Ray and
the in-process executor write the same bytes. Its own module (not ``runner.py``) because the Ray
datasource reads through it too, and the runner imports that datasource only when Ray runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.pipelines.core.errors import ConfigError, SchemaError

PARTITION_COL = "_partition"
ORDER_COL = "_order"
SUBORDER_COL = "_suborder"  # derived rows (an expanding stage's output) sort right after their parent
BOOKKEEPING = (PARTITION_COL, ORDER_COL, SUBORDER_COL)


class Source(ABC):
    """Records split into numbered partitions; ``read`` yields one partition's rows in order."""

    @abstractmethod
    def partitions(self) -> list[int]:
        """The partition numbers, in input order."""

    @abstractmethod
    def read(self, partition: int) -> Iterator[pa.Table]:
        """Record batches of one partition, in input order."""

    def planned_bytes(self) -> int:
        """The size of the input the partitions read: what ``--executor auto`` weighs against the CPUs."""
        raise ConfigError(f"{type(self).__name__} does not know its input's size; give --executor ray or local")

    def prepare(self, work_dir: Path) -> None:
        """Build what reading needs once, before any partition is read (a WARC set's URL index).

        ``work_dir`` is the output's scratch folder, which every worker sees; nothing by default.
        """
        return  # most sources need nothing built

    def avoiding(self, taken: Mapping[int, frozenset[str]]) -> Source:
        """This source, with partition ``p`` giving new ids to records whose ids are in ``taken[p]``.

        ``taken[p]`` holds ids that earlier partitions use. Only a source that assigns ids (raw
        inputs) can do this; records that already carry ids (an earlier output) cannot be renamed,
        so an id repeated there is an error.
        """
        partition, ids = min(taken.items())
        raise SchemaError(
            f"id {min(ids)!r} of partition {partition} is also used by an earlier partition of the "
            "input; ids must be unique (was the input written by fusionforge?)"
        )


def tag_batches(partition: int, batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Add the partition number and a running order to each batch (the writer sorts on them)."""
    start = 0
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        batch = batch.append_column(PARTITION_COL, pa.array([partition] * n, pa.int64()))
        batch = batch.append_column(ORDER_COL, pa.array(range(start, start + n), pa.int64()))
        start += n
        yield batch


def in_order(table: pa.Table) -> pa.Table:
    """Rows sorted back into input order, without the executor's bookkeeping columns.

    Derived rows carry their parent's ``_order`` and a ``_suborder`` from 1, so they follow their
    parent (suborder 0, or null when no stage expanded that batch) in a deterministic order.
    """
    keys = [(ORDER_COL, "ascending")]
    if SUBORDER_COL in table.column_names:
        table = table.set_column(
            table.column_names.index(SUBORDER_COL), SUBORDER_COL, pc.fill_null(table.column(SUBORDER_COL), 0)
        )
        keys.append((SUBORDER_COL, "ascending"))
    table = table.take(pc.sort_indices(table, sort_keys=keys))
    return table.drop_columns([c for c in BOOKKEEPING if c in table.column_names])
