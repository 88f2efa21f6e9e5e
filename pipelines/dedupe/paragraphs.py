"""``dedupe --paragraphs``: count in how many documents each paragraph occurs, with memory bounded by a bucket.

1. Keys (a partitioned pass on the executor, resumable by markers): each surviving document's
   distinct paragraph keys (``filters/dedup/paragraphs.py``), written sorted per input shard to
   ``paragraphs-N.npy`` (8 bytes a paragraph on disk). The copies the near-duplicate pass drops are
   left out, so a page crawled twice does not make its own paragraphs look like boilerplate.
2. Count (this process): the 64-bit key space is cut into 2^k buckets, k chosen so one bucket holds
   at most ``BUCKET_KEYS`` keys over all files (about 64 MB in memory, whatever the corpus); each
   file is sorted, so a bucket is one slice per file (memory-mapped). ``np.unique`` counts a
   bucket; keys with ``min_docs`` documents or more are the frequent ones, written to
   ``frequent-paragraphs.npy`` for ``dedupe_paragraphs_v1``. An exact count needs no false-positive
   rate (a Bloom filter's price) and costs one extra read of the keys.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fusionforge.filters.dedup.paragraphs import DOCUMENTS, document_keys
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.lifecycle import DEDUPE_PARAGRAPHS, Markers, run_pending
from fusionforge.pipelines.core.progress import Progress, phase
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.dedupe.store import file_path, save_npy

BUCKET_KEYS = 8_000_000
FREQUENT = "frequent-paragraphs.npy"


def write_keys(root: str, partition: int, table: pa.Table) -> dict[str, Any]:
    """The keys pass's partition writer: the sorted paragraph keys of one input shard's surviving documents."""
    duplicate = table.column("dedupe__duplicate").to_pylist()
    errors = table.column(S.ERROR).to_pylist()
    columns = zip(
        table.column(S.MODALITY).to_pylist(), table.column(S.TEXT).to_pylist(), table.column(S.SEGMENTS).to_pylist()
    )
    parts = [
        document_keys(modality, text, segments)
        for (modality, text, segments), dup, error in zip(columns, duplicate, errors)
        if dup is None and error is None and modality in DOCUMENTS
    ]
    keys = np.sort(np.concatenate(parts)) if parts else np.empty(0, np.uint64)
    save_npy(file_path(Path(root), "paragraphs", partition, "npy"), keys)
    return {"partition": partition, "documents": len(parts), "paragraphs": int(len(keys))}


def frequent_keys(files: list[Path], min_docs: int, bucket_keys: int = BUCKET_KEYS) -> tuple[np.ndarray, int]:
    """(sorted keys found in at least ``min_docs`` documents, number of distinct keys), one bucket at a time."""
    arrays = [np.load(path, mmap_mode="r") for path in files]
    total = sum(len(a) for a in arrays)
    bits = min(32, max(0, math.ceil(math.log2(max(total, 1) / bucket_keys))))
    edges = np.array([b << (64 - bits) for b in range(1, 1 << bits)], np.uint64)
    bounds = [np.concatenate([[0], np.searchsorted(a, edges), [len(a)]]) for a in arrays]
    frequent, distinct = [np.empty(0, np.uint64)], 0
    for bucket in range(1 << bits):
        pieces = [np.asarray(a[b[bucket] : b[bucket + 1]]) for a, b in zip(arrays, bounds)]
        keys, counts = np.unique(np.concatenate(pieces) if pieces else np.empty(0, np.uint64), return_counts=True)
        distinct += len(keys)
        frequent.append(keys[counts >= min_docs].astype(np.uint64))
    return np.concatenate(frequent), distinct


def count_paragraphs(
    out: Path, root: Path, source: Source, min_docs: int, executor, progress: Progress
) -> dict[str, Any]:
    """Run (or finish) both steps; return the counts, also kept in the once-per-run marker."""
    done = Markers(str(out), DEDUPE_PARAGRAPHS)
    summary = done.read()
    if summary is not None:
        return summary
    phase(progress, "paragraphs")
    partitions = source.partitions()
    run_pending(done, source, [], partial(write_keys, str(root)), executor, progress)
    parts = [p for p in done.read_all(partitions) if p is not None]
    files = [file_path(root, "paragraphs", p["partition"], "npy") for p in parts]
    frequent, distinct = frequent_keys([f for f in files if f.exists()], min_docs)
    save_npy(root / FREQUENT, frequent)
    summary = {
        "min_docs": min_docs,
        "documents": sum(p["documents"] for p in parts),
        "paragraphs": sum(p["paragraphs"] for p in parts),
        "distinct_paragraphs": distinct,
        "frequent_paragraphs": int(len(frequent)),
        "frequent_file": str(root / FREQUENT),
    }
    done.mark(summary)
    return summary
