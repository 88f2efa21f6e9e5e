"""The per-record phase of an SFT job: input rows in partitions -> stages (Ray or in-process) -> Parquet parts.

Input files are planned with the shard planner (sorted, large JSONL split at line boundaries),
each row travels as JSON text next to the record bookkeeping columns (id, source, file, position,
``drop_reason``, ``error``), the stages run on the executor the user chose, and each partition's
rows land in ``_work/parts/part-NNNNNN.parquet`` followed by a completion marker. A resumed run
skips partitions with markers; the global phase (dedup, mixing, split, outputs) reads the parts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.io import WORK_DIR, atomic_path
from fusionforge.pipelines.core.lifecycle import PARTITION, Markers, run_pending
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions, failed_row, record_row
from fusionforge.pipelines.readers.guard import guarded, records_table
from fusionforge.pipelines.readers.plan import Partition, parse_input, plan_inputs
from fusionforge.pipelines.readers.rows import iter_structured

ROW = "sft_read__row"  # the input row as JSON text
PARTS = f"{WORK_DIR}/parts"
BOOKKEEPING = (S.ID, S.SOURCE, S.MODALITY, S.INPUT_FILE, S.INPUT_POSITION, S.DROP_REASON, S.ERROR)


def plan(inputs: Sequence[str], partition_mb: float) -> list[Partition]:
    """Partitions of the JSONL/Parquet inputs (``NAME=PATH`` or ``PATH``), in the order given."""
    return plan_inputs([parse_input(text, "text") for text in inputs], partition_mb).partitions


class RowSource(Source):
    """The rows of planned input files; an unparseable line becomes a failed row (or raises under ``strict``)."""

    def __init__(self, partitions: list[Partition], strict: bool = False, batch_rows: int = 512) -> None:
        self._partitions = {p.index: p for p in partitions}
        self._options = ReaderOptions(strict=strict)
        self._batch_rows = batch_rows

    def partitions(self) -> list[int]:
        return sorted(self._partitions)

    def planned_bytes(self) -> int:
        return sum(p.planned_bytes() for p in self._partitions.values())

    def read(self, partition: int) -> Iterator[pa.Table]:
        rows: list[dict[str, Any]] = []
        for file in self._partitions[partition].files:
            for position, row in iter_structured(file):
                if isinstance(row, str):
                    rows.append(failed_row(file, position, row, options=self._options))
                else:
                    build = partial(_input_row, file, position, row)
                    rows.append(guarded(file, position, S.Modality.TEXT, self._options, build))
                if len(rows) >= self._batch_rows:
                    yield _table(rows, self._options.strict)
                    rows = []
        if rows:
            yield _table(rows, self._options.strict)


def _input_row(file: InputFile, position: int, row: dict[str, Any]) -> dict[str, Any]:
    """The record bookkeeping of one input row, with the row itself as JSON text."""
    own_id = row.get("id") if isinstance(row.get("id"), (str, int)) else None
    base = record_row(file, position, S.Modality.TEXT, None, own_id=own_id)
    return {**base, ROW: json.dumps(row, ensure_ascii=False, default=_jsonable)}


def _table(rows: list[dict[str, Any]], strict: bool) -> pa.Table:
    schema = pa.schema([S.RECORD_SCHEMA.field(name) for name in BOOKKEEPING] + [pa.field(ROW, pa.large_string())])
    return records_table([{k: r.get(k) for k in schema.names} for r in rows], schema, strict)


def _jsonable(value: Any) -> Any:
    """Bytes (embedded media) become a short marker: a row's text never carries the bytes themselves."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    return str(value)


def run_parts(
    out: Path, source: RowSource, stages: Sequence[StageSpec], run: RunSettings, progress: Progress = quiet
) -> None:
    """Run the stages over every partition that has no completion marker yet.

    The caller has checked the output folder first (``prepare_output``: refuse a non-empty one
    unless resuming the same plan).
    """
    markers = Markers(str(out), PARTITION)
    run_pending(markers, source, stages, partial(write_part, str(out)), run.make_executor, progress)


def write_part(out_dir: str, partition: int, table: pa.Table) -> dict[str, Any]:
    """One partition's rows (every column the stages added) as a Parquet part; its summary is its marker's data."""
    path = Path(out_dir) / PARTS / f"part-{partition:06d}.parquet"
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return {"partition": partition, "rows": table.num_rows}


def part_paths(out: Path, partitions: list[Partition]) -> list[Path]:
    return [out / PARTS / f"part-{p.index:06d}.parquet" for p in partitions]


def iter_part_batches(paths: list[Path], columns: list[str], batch_size: int = 4096) -> Iterator[pa.RecordBatch]:
    """Batches of the given columns across all parts, in partition order (memory bounded by one batch)."""
    for path in paths:
        parquet = pq.ParquetFile(path)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(columns=present, batch_size=batch_size):
            for missing in (c for c in columns if c not in present):
                batch = batch.append_column(missing, pa.nulls(batch.num_rows))
            yield batch
