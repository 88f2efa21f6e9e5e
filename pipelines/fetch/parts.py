"""A finished partition's outputs, and the merged ``pairs.jsonl`` and ``ledger.parquet`` of the run.

A partition whose URLs are all decided gets its pairs part (the kept rows, in listing order) and its
ledger part (every row) from its journal; image files in its folder that no kept row names (left by
an attempt that a killed run wrote but a resumed run decided otherwise) are removed. The caller
writes the marker after this, so a partition with a marker has every file in place. The merge
streams the parts in partition order, so the merged files are the same however the run was cut.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.core.ledger import DROPPED, FAILED, KEPT, LEDGER_SCHEMA
from fusionforge.pipelines.fetch.store import partition_folder

PARTS_DIR = "_parts"
PAIRS = "pairs.jsonl"
LEDGER = "ledger.parquet"
STEP = "fetch"
# The shared ledger columns, then what fetch adds: the URL and the last HTTP status it got (null: none).
FETCH_LEDGER_SCHEMA = LEDGER_SCHEMA.append(pa.field("url", pa.string())).append(pa.field("http_status", pa.int32()))


def write_partition(out_dir: str | os.PathLike, partition: int, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Write the partition's pairs and ledger parts from its decisions; return its summary (the marker's data)."""
    out = Path(out_dir)
    entries = sorted(entries, key=lambda e: e["key"])
    kept = [e for e in entries if e["status"] == KEPT]
    with atomic_path(out / PARTS_DIR / f"pairs-{partition:06d}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(entry["pair"], ensure_ascii=False) + "\n" for entry in kept)
    with atomic_path(out / PARTS_DIR / f"ledger-{partition:06d}.parquet") as tmp:
        pq.write_table(ledger_table(entries), tmp)
    _remove_unnamed_images(out / partition_folder(partition), {e["pair"]["image"] for e in kept})
    statuses = [e["status"] for e in entries]
    return {
        "partition": partition,
        "urls": len(entries),
        KEPT: statuses.count(KEPT),
        DROPPED: statuses.count(DROPPED),
        FAILED: statuses.count(FAILED),
        "image_bytes": sum(e["bytes"] for e in kept),
    }


def ledger_table(entries: list[dict[str, Any]]) -> pa.Table:
    """One ledger row per decision: the shared columns plus ``url`` and ``http_status``."""
    columns = {
        S.ID: [e["id"] for e in entries],
        S.SOURCE: [e["source"] for e in entries],
        S.MODALITY: ["image"] * len(entries),
        S.INPUT_FILE: [e["file"] for e in entries],
        S.INPUT_POSITION: [e["position"] for e in entries],
        "status": [e["status"] for e in entries],
        "reason": [e["reason"] for e in entries],
        "step": [STEP] * len(entries),
        S.PARENT_ID: [None] * len(entries),
        "url": [e["url"] for e in entries],
        "http_status": [e["http_status"] for e in entries],
    }
    return pa.table(columns, schema=FETCH_LEDGER_SCHEMA)


def merge_parts(out_dir: str | os.PathLike, partitions: list[int]) -> dict[str, int]:
    """Write ``pairs.jsonl`` and ``ledger.parquet`` from the parts, in partition order; return their row counts."""
    out = Path(out_dir)
    pairs = 0
    with atomic_path(out / PAIRS) as tmp, open(tmp, "wb") as merged:
        for p in partitions:
            with open(out / PARTS_DIR / f"pairs-{p:06d}.jsonl", "rb") as part:
                for line in part:
                    merged.write(line)
                    pairs += 1
    rows = 0
    with atomic_path(out / LEDGER) as tmp, pq.ParquetWriter(tmp, FETCH_LEDGER_SCHEMA) as writer:
        for p in partitions:
            table = pq.read_table(out / PARTS_DIR / f"ledger-{p:06d}.parquet", schema=FETCH_LEDGER_SCHEMA)
            writer.write_table(table)
            rows += table.num_rows
    return {"pairs": pairs, "ledger": rows}


def _remove_unnamed_images(folder: Path, named: set[str]) -> None:
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if f"{folder.parent.name}/{folder.name}/{path.name}" not in named:
            path.unlink()
