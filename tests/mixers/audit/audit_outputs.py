"""Small fusionforge outputs built by hand for the audit tests (same layout as the real writers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.ledger import kept_mask, ledger_rows


def media(kind: str, width: int, height: int, size: int, n_frames: int | None = None,
          duration_s: float | None = None) -> dict[str, Any]:
    return {"kind": kind, "uri": "shards/x.tar", "offset": 0, "size": size, "bytes": None, "sha256": "0" * 64,
            "format": "png" if kind == "image" else "mp4", "width": width, "height": height,
            "duration_s": duration_s, "fps": 10.0 if kind == "video" else None, "n_frames": n_frames, "codec": None}


def record(record_id: str, source: str, modality: str = "text", text: str | None = None, items=(),
           meta: dict | None = None, **columns: Any) -> dict[str, Any]:
    row = {S.ID: record_id, S.SOURCE: source, S.MODALITY: modality, S.TEXT: text, S.MEDIA: list(items),
           S.META: json.dumps(meta or {}), S.INPUT_FILE: f"{source}.jsonl", S.INPUT_POSITION: 0,
           S.CONTENT_HASH: None, S.SEGMENTS: None, S.TEXT_TOKENS: None, S.VISION_TOKENS: None,
           S.DROP_REASON: None, S.ERROR: None}
    row.update(columns)
    return row


def records_table(rows: list[dict[str, Any]], extra: dict[str, pa.DataType] | None = None) -> pa.Table:
    schema = pa.schema(list(S.RECORD_SCHEMA) + [pa.field(k, v) for k, v in (extra or {}).items()])
    full = [{**{k: None for k in (extra or {})}, **row} for row in rows]
    return S.validate(pa.Table.from_pylist(full, schema=schema))


def write_output(folder: Path, step: str, rows: list[dict[str, Any]], upstream: Path | None = None,
                 extra: dict[str, pa.DataType] | None = None, finished: bool = True) -> Path:
    """Write ``rows`` (every input of the step) as a finished step output: manifest, rejected/, ledger."""
    folder.mkdir(parents=True, exist_ok=True)
    table = records_table(rows, extra)
    kept = table.filter(kept_mask(table))
    n = kept.num_rows
    kept = kept.append_column("shard", pa.array([f"shards/{step}-000000-000.tar"] * n))
    kept = kept.append_column("key", kept.column(S.ID))
    members = pa.list_(pa.struct([("name", pa.string()), ("offset", pa.int64()), ("size", pa.int64())]))
    kept = kept.append_column("members", pa.array([[]] * n, members))
    pq.write_table(kept, folder / "manifest.parquet")
    rejected = table.filter(pc.invert(kept_mask(table)))
    if rejected.num_rows:
        (folder / "rejected").mkdir(exist_ok=True)
        pq.write_table(rejected, folder / "rejected" / "part-000000.parquet")
    pq.write_table(ledger_rows(table, step), folder / "ledger.parquet")
    (folder / "report.json").write_text(json.dumps({"step": step}))
    config = {"step": step, **({"input": str(upstream)} if upstream else {})}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    if finished:
        (folder / "_SUCCESS").write_text("ok\n")
    return folder
