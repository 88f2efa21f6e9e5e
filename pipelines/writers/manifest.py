"""Merge the per-partition manifest and ledger parts into ``manifest.parquet`` and ``ledger.parquet``.

Parts are streamed one at a time (memory bounded by the largest part), in partition order, so the
merged files are deterministic. A run is complete when ``_SUCCESS`` exists; until then the parts
are the truth, and a resumed run merges them again.
"""

from __future__ import annotations

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
# Rows per row group of the merged files. A later step reads one input shard per unit of work and
# Parquet decodes whole row groups: with one group per part (a partition, ~100k records at 1M) every
# shard's read decoded its whole partition, text included, and pack's peak grew with the partitions.
ROW_GROUP_ROWS = 4096


def merge_parts(out_dir: str | Path, partitions: list[int]) -> dict[str, Any]:
    """Write the merged files; return their row counts."""
    out = Path(out_dir)
    counts = {}
    for kind, final in (("manifest", MANIFEST), ("ledger", LEDGER)):
        paths = [out / PARTS_DIR / f"{kind}-{p:06d}.parquet" for p in partitions]
        counts[kind] = _concat(paths, out / final)
    return counts


def ids_used_earlier(out_dir: str | Path, partitions: list[int]) -> dict[int, frozenset[str]]:
    """Per partition, the ids of its ledger part that a ledger part of an earlier partition also holds.

    Ids are compared by 64-bit hash first (8 bytes per record in memory); only the partitions that
    hold a hash seen in two partitions are read again, and their ids with such hashes compared exactly.
    """
    paths = [Path(out_dir) / PARTS_DIR / f"ledger-{p:06d}.parquet" for p in partitions]
    hashes = [np.unique(_id_hashes(pq.read_table(path, columns=[S.ID]).column(0))) for path in paths]
    if not hashes:
        return {}
    values = np.sort(np.concatenate(hashes))
    repeated = np.unique(values[1:][values[1:] == values[:-1]])
    if not len(repeated):
        return {}
    used: set[str] = set()
    found: dict[int, frozenset[str]] = {}
    for partition, path, unique_hashes in zip(partitions, paths, hashes):
        if not np.isin(unique_hashes, repeated).any():
            continue
        ids = pq.read_table(path, columns=[S.ID]).column(0)
        candidates = set(ids.filter(pa.array(np.isin(_id_hashes(ids), repeated))).to_pylist())
        if candidates & used:
            found[partition] = frozenset(candidates & used)
        used |= candidates
    return found


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
            writer.write_table(table.select(schema.names).cast(schema), row_group_size=ROW_GROUP_ROWS)
            rows += table.num_rows
    return rows


def _id_hashes(ids: pa.ChunkedArray) -> np.ndarray:
    return np.fromiter((xxhash.xxh64_intdigest(i.encode()) for i in ids.to_pylist()), np.uint64, count=len(ids))
