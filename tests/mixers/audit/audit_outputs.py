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


def media(
    kind: str, width: int, height: int, size: int, n_frames: int | None = None, duration_s: float | None = None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "uri": "shards/x.tar",
        "offset": 0,
        "size": size,
        "bytes": None,
        "sha256": "0" * 64,
        "format": "png" if kind == "image" else "mp4",
        "width": width,
        "height": height,
        "duration_s": duration_s,
        "fps": 10.0 if kind == "video" else None,
        "n_frames": n_frames,
        "codec": None,
    }


def record(
    record_id: str,
    source: str,
    modality: str = "text",
    text: str | None = None,
    items=(),
    meta: dict | None = None,
    **columns: Any,
) -> dict[str, Any]:
    row = {
        S.ID: record_id,
        S.SOURCE: source,
        S.MODALITY: modality,
        S.TEXT: text,
        S.MEDIA: list(items),
        S.META: json.dumps(meta or {}),
        S.INPUT_FILE: f"{source}.jsonl",
        S.INPUT_POSITION: 0,
        S.CONTENT_HASH: None,
        S.SEGMENTS: None,
        S.TEXT_TOKENS: None,
        S.VISION_TOKENS: None,
        S.DROP_REASON: None,
        S.ERROR: None,
    }
    row.update(columns)
    return row


def records_table(rows: list[dict[str, Any]], extra: dict[str, pa.DataType] | None = None) -> pa.Table:
    schema = pa.schema(list(S.RECORD_SCHEMA) + [pa.field(k, v) for k, v in (extra or {}).items()])
    full = [{**{k: None for k in (extra or {})}, **row} for row in rows]
    return S.validate(pa.Table.from_pylist(full, schema=schema))


def write_output(
    folder: Path,
    step: str,
    rows: list[dict[str, Any]],
    upstream: Path | None = None,
    extra: dict[str, pa.DataType] | None = None,
    finished: bool = True,
) -> Path:
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


GOPHER = "text_gopher_quality_v1__word_count"


def _web(i: int, **kw: Any) -> dict[str, Any]:
    return record(f"web/w{i}", "web", text="word " * (4 * i), **kw)


def _photo(i: int, **kw: Any) -> dict[str, Any]:
    return record(f"photos/p{i}", "photos", "image", text="cap", items=[media("image", 28, 28, 100)], **kw)


def build_chain(root: Path) -> dict[str, Path]:
    """shard (8 inputs, 1 failure) -> dedupe (1 exact, 2 near duplicates; clusters.parquet) -> filter (2 drops)."""
    shard = write_output(
        root / "out",
        "shard",
        [
            *(_web(i) for i in range(1, 5)),
            record("web/w5", "web", error="read:malformed_json: x"),
            *(_photo(i) for i in range(1, 4)),
        ],
    )
    dedupe = write_output(
        root / "dedup",
        "dedupe",
        [
            _web(1),
            _web(2, drop_reason="dedupe:exact_dup_of:web/w1"),
            _web(3, drop_reason="dedupe:near_dup_of:web/w1"),
            _web(4),
            _photo(1),
            _photo(2),
            _photo(3, drop_reason="dedupe:near_dup_of:photos/p1"),
        ],
        upstream=shard,
    )
    pq.write_table(
        pa.table(
            {
                "cluster_id": ["c1", "c1", "c1", "c2", "c2", "c3"],
                "member_id": ["web/w1", "web/w2", "web/w3", "photos/p1", "photos/p3", "x/2"],
                "kept_id": ["web/w1", "web/w1", "web/w1", "photos/p1", "photos/p1", "x/1"],  # c3 lists no kept member
                "similarity": [1.0, 1.0, 0.85, 1.0, 0.9, 0.95],
            }
        ),
        dedupe / "clusters.parquet",
    )
    clean = write_output(
        root / "clean",
        "filter",
        [
            _web(1, **{GOPHER: 50}),
            _web(4, **{GOPHER: 3, "drop_reason": "text_gopher_quality_v1:word_count"}),
            _photo(1),
            _photo(2, drop_reason="image_size_v1:too_small"),
        ],
        upstream=dedupe,
        extra={GOPHER: pa.int64()},
    )
    return {"shard": shard, "dedupe": dedupe, "filter": clean}


def _segment(
    sample: str, source: str, length: int, vision: int = 0, split: bool = False, start: int = 0
) -> dict[str, Any]:
    return {
        "sample_id": sample,
        "source": source,
        "modality": "text",
        "length": length,
        "vision_tokens": vision,
        "split": split,
        "sample_start": start,
    }


def build_plan(folder: Path, upstream: Path) -> Path:
    """A pack output of 3 sequences of 128 tokens: 36 padding tokens, 70 vision of 348, one split document."""
    folder.mkdir(parents=True)
    rows = [
        {
            "sequence_id": 0,
            "text_tokens": 90,
            "vision_tokens": 10,
            "padding": 28,
            "cu_seqlens": [0, 90, 100],
            "segments": [_segment("web/w1", "web", 90), _segment("photos/p1", "photos", 10, 10)],
        },
        {
            "sequence_id": 1,
            "text_tokens": 128,
            "vision_tokens": 0,
            "padding": 0,
            "cu_seqlens": [0, 128],
            "segments": [_segment("web/w9", "web", 128, split=True)],
        },
        {
            "sequence_id": 2,
            "text_tokens": 60,
            "vision_tokens": 60,
            "padding": 8,
            "cu_seqlens": [0, 60, 120],
            "segments": [_segment("web/w9", "web", 60, split=True, start=128), _segment("photos/p2", "photos", 60, 60)],
        },
    ]
    pq.write_table(pa.Table.from_pylist(rows), folder / "plan.parquet")
    (folder / "report.json").write_text('{"step": "pack", "seq_len": 128}')
    (folder / "config.yaml").write_text(yaml.safe_dump({"step": "pack", "input": str(upstream)}))
    (folder / "_SUCCESS").write_text("ok\n")
    return folder


def build_untouched_chain(root: Path) -> list[str]:
    """shard (3 web, 2 clips) -> dedupe (one web copy) -> filter (one clip): dedupe never touches clips."""
    web = [record(f"web/w{i}", "web", text="word " * (4 * i)) for i in (1, 2, 3)]
    clips = [
        record(f"clips/c{i}", "clips", "video", text="clip", items=[media("video", 28, 28, 500, 8, 0.8)])
        for i in (1, 2)
    ]
    shard = write_output(root / "out", "shard", web + clips)
    dedupe = write_output(
        root / "dedup",
        "dedupe",
        [web[0], {**web[1], "drop_reason": "dedupe:exact_dup_of:web/w1"}, web[2], *clips],
        upstream=shard,
    )
    clean = write_output(
        root / "clean",
        "filter",
        [web[0], web[2], clips[0], {**clips[1], "drop_reason": "video_motion_v1:static"}],
        upstream=dedupe,
    )
    return [str(shard), str(dedupe), str(clean)]


def build_many_lengths(folder: Path) -> Path:
    """300 texts of 1..300 tokens (more distinct values than a histogram keeps exactly), 3 images of 2 widths."""
    rows = [record(f"web/w{i}", "web", text="x" * (4 * i)) for i in range(1, 301)]
    rows += [
        record(f"photos/p{i}", "photos", "image", items=[media("image", 28 * (1 + i % 2), 28, 100)]) for i in range(3)
    ]
    return write_output(folder, "shard", rows)
