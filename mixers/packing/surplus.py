"""The untouched surplus of a pack, spilled to disk one input partition per file for the ledger to read back.

At a low vision ratio the surplus (chosen pieces no window touched: the other kind ran out) is most
of the text: 627,000 pieces for the 991,000 input records of the 1M-record mixed corpus. Kept in the
driver as sorted 8-byte keys (with their sort and counts) it grew the pack's peak with the corpus;
as one int64 row file per input partition under ``_work/surplus`` the ledger reads one partition's
rows at a time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fusionforge.mixers.packing.items import ItemBatch
from fusionforge.pipelines.core.io import WORK_DIR

SURPLUS_DIR = f"{WORK_DIR}/surplus"


def spill_surplus(out: Path, surplus: dict[str, Iterator[ItemBatch]]) -> dict[str, int]:
    """Spill the rows of the untouched surplus pieces per input partition; return the surplus items per kind.

    What a killed run spilled is removed first, so a rerun counts every piece once.
    """
    folder = out / SURPLUS_DIR
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    counts = {}
    for kind, batches in surplus.items():
        counts[kind] = 0
        for batch in batches:
            counts[kind] += len(batch)
            untouched = (batch.offset == 0) & (batch.column("partition") >= 0)
            partition, row = batch.column("partition")[untouched], batch.column("row")[untouched]
            order = np.argsort(partition, kind="stable")
            partition, row = partition[order], row[order]
            starts = np.flatnonzero(np.diff(partition, prepend=-1))
            for begin, end in zip(starts, [*starts[1:], len(partition)]):
                with open(_surplus_file(out, int(partition[begin])), "ab") as file:
                    row[begin:end].astype(np.int64).tofile(file)
    return counts


def surplus_rows(out: Path, partition: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``partition``'s untouched surplus pieces (sorted, unique) and how many pieces each has."""
    path = _surplus_file(out, partition)
    rows = np.fromfile(path, np.int64) if path.exists() else np.empty(0, np.int64)
    return np.unique(rows, return_counts=True)


def _surplus_file(out: Path, partition: int) -> Path:
    return out / SURPLUS_DIR / f"part-{partition:06d}.bin"
