"""Merge the per-partition manifest and ledger parts into ``manifest.parquet`` and ``ledger.parquet``.

Parts are streamed one at a time (memory bounded by the largest part), in partition order, so the
merged files are deterministic. A run is complete when ``_SUCCESS`` exists; until then the parts
are the truth, and a resumed run merges them again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.writers.webdataset_writer import PARTS_DIR, REJECTED_DIR

MANIFEST = "manifest.parquet"
LEDGER = "ledger.parquet"


def merge_parts(out_dir: str | Path, partitions: list[int]) -> dict[str, Any]:
    """Write the merged files; return row counts and the number of ids used in two partitions."""
    out = Path(out_dir)
    counts = {}
    for kind, final in (("manifest", MANIFEST), ("ledger", LEDGER)):
        paths = [out / PARTS_DIR / f"{kind}-{p:06d}.parquet" for p in partitions]
        counts[kind] = _concat(paths, out / final)
    counts["duplicate_ids_across_partitions"] = count_duplicate_ids(out / LEDGER)
    return counts


def unify_rejected(out_dir: str | Path) -> None:
    """Give every ``rejected/part-*.parquet`` the same columns (missing ones as nulls).

    Partitions add different score columns (a text-only shard has no video scores), and readers of a
    Parquet folder take the first file's schema; unified parts read back as one table with every
    score. Each file is rewritten atomically, so a killed run simply unifies again.
    """
    paths = sorted((Path(out_dir) / REJECTED_DIR).glob("part-*.parquet"))
    schemas = {path: pq.read_schema(path) for path in paths}
    if len({tuple(s.names) for s in schemas.values()}) <= 1:
        return
    unified = pa.unify_schemas(list(schemas.values()))
    for path, schema in schemas.items():
        if schema.equals(unified):
            continue
        table = pq.read_table(path)
        for field in unified:
            if field.name not in table.column_names:
                table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
        with atomic_path(path) as tmp:
            pq.write_table(table.select(unified.names).cast(unified), tmp)


def remove_parts(out_dir: str | Path) -> None:
    """Drop the parts once the merged files are in place (they would be counted twice otherwise)."""
    shutil.rmtree(Path(out_dir) / PARTS_DIR, ignore_errors=True)


def _concat(paths: list[Path], final: Path) -> int:
    schemas = [pq.read_schema(p) for p in paths]
    schema = pa.unify_schemas(schemas) if schemas else pa.schema([])
    rows = 0
    with atomic_path(final) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for path in paths:
            table = pq.read_table(path)
            for field in schema:
                if field.name not in table.column_names:
                    table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
            writer.write_table(table.select(schema.names).cast(schema))
            rows += table.num_rows
    return rows


def count_duplicate_ids(ledger_path: Path) -> int:
    """Ids that occur more than once in a ledger (64-bit hashes; memory 8 bytes per record)."""
    hashes = []
    for batch in pq.ParquetFile(ledger_path).iter_batches(columns=[S.ID], batch_size=65536):
        hashes.append(np.fromiter((xxhash.xxh64_intdigest(i.encode()) for i in batch.column(0).to_pylist()), np.uint64))
    if not hashes:
        return 0
    values = np.concatenate(hashes)
    return int(len(values) - len(np.unique(values)))
