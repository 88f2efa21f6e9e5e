"""Write one partition's kept records as WebDataset tar shards, plus its manifest and ledger parts.

Layout per sample (``key`` is a file-name-safe form of the record id)::

    {key}.json          the record header: id, source, modality, meta, segments, media facts
    {key}.txt           the text (document, caption, or the joined text of an interleaved doc)
    {key}.{ext}         the media item, original encoded bytes (``{key}.{i:03d}.{ext}`` when several)

Tar headers are plain USTAR (member names stay short) with fixed fields (mtime 0, uid/gid 0), so the
same records give byte-identical shards. Each
shard is written under a temporary name and renamed; the job marks the partition done after this
writer returns (``lifecycle.MarkedWriter``).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE, check_bounds, within
from fusionforge.pipelines.core.io import atomic_path, read_range, safe_name, shard_name
from fusionforge.pipelines.core.ledger import kept_mask, ledger_rows

SHARD_DIR = "shards"
PARTS_DIR = "_parts"
REJECTED_DIR = "rejected"
EXTENSIONS = {"jpeg": "jpg", "tiff": "tif"}
MEMBER_TYPE = pa.struct([("name", pa.string()), ("offset", pa.int64()), ("size", pa.int64())])
MANIFEST_EXTRA = [("shard", pa.string()), ("key", pa.string()), ("members", pa.list_(MEMBER_TYPE))]


@dataclass(frozen=True)
class ShardLayout:
    """Where and how big: ``shard_size_mb`` and/or ``shard_count`` (samples) close a shard."""

    out_dir: str
    step: str = "shard"
    shard_size_mb: float | None = within(NON_NEGATIVE, 256.0)  # 0 or None: no size limit
    shard_count: int | None = within(COUNT, None)
    shuffle_seed: int | None = None  # shuffle kept records inside each partition, deterministically

    def __post_init__(self) -> None:
        check_bounds(self, sharding_problem(self.shard_size_mb, self.shard_count))


def sharding_problem(shard_size_mb: float | None, shard_count: int | None) -> str | None:
    """Why these settings close no shard (None: they close some); every config that writes shards asks."""
    if shard_size_mb or shard_count:
        return None
    return "give shard_size_mb > 0 and/or shard_count (--shard-size, --shard-count), or every record lands in one shard"


def sample_key(record_id: str) -> str:
    """A tar-safe key: the id when it is already safe, else a cleaned prefix plus a short hash."""
    cleaned = safe_name(record_id, 64)
    if cleaned == record_id:
        return cleaned
    return f"{cleaned[:48]}_{hashlib.sha1(record_id.encode()).hexdigest()[:12]}"


def write_partition(layout: ShardLayout, partition: int, table: pa.Table) -> dict[str, Any]:
    """Write shards, manifest part, ledger part and rejected part for one partition; return its summary."""
    out = Path(layout.out_dir)
    table = S.validate(table)
    kept = table.filter(kept_mask(table))
    if layout.shuffle_seed is not None:
        kept = kept.take(np.random.default_rng([layout.shuffle_seed, partition]).permutation(kept.num_rows))
    source = table.column(S.SOURCE)[0].as_py() if table.num_rows else "empty"
    manifest_rows: list[dict[str, Any]] = []
    shard_names = []
    for part, rows in enumerate(_split(kept, layout)):
        name = shard_name(source, partition, part)
        manifest_rows.extend(_write_shard(out / SHARD_DIR / name, f"{SHARD_DIR}/{name}", rows))
        shard_names.append(name)
    _write_parquet(out / PARTS_DIR / f"manifest-{partition:06d}.parquet", _manifest_table(manifest_rows, kept))
    ledger = ledger_rows(table, layout.step)
    _write_parquet(out / PARTS_DIR / f"ledger-{partition:06d}.parquet", ledger)
    rejected = table.filter(pc.invert(kept_mask(table)))
    if rejected.num_rows:
        _write_parquet(out / REJECTED_DIR / f"part-{partition:06d}.parquet", _without_bytes(rejected))
    status = ledger.column("status").to_pylist()
    return {
        "partition": partition,
        "source": source,
        "shards": shard_names,
        "inputs": table.num_rows,
        "kept": status.count("kept"),
        "dropped": status.count("dropped"),
        "failed": status.count("failed"),
        "bytes": sum((out / SHARD_DIR / n).stat().st_size for n in shard_names),
        "repeated_ids": count_repeated_ids(table),
    }


def count_repeated_ids(table: pa.Table) -> int:
    """Records that got a position-derived id because an earlier record used theirs (``meta.repeated_id``)."""
    meta = table.column(S.META)
    maybe = meta.filter(pc.fill_null(pc.match_substring(meta, '"repeated_id": '), False)).to_pylist()
    return sum("repeated_id" in json.loads(text) for text in maybe)


def _split(kept: pa.Table, layout: ShardLayout) -> list[list[dict[str, Any]]]:
    limit = int(layout.shard_size_mb * 1024**2) if layout.shard_size_mb else None
    shards, current, size = [], [], 0
    for row in kept.to_pylist():
        row_size = _estimated_size(row)
        full_by_count = layout.shard_count and len(current) >= layout.shard_count
        full_by_size = limit is not None and current and size + row_size > limit
        if full_by_count or full_by_size:
            shards.append(current)
            current, size = [], 0
        current.append(row)
        size += row_size
    if current:
        shards.append(current)
    return shards


def _estimated_size(row: dict[str, Any]) -> int:
    sizes = [len((row[S.TEXT] or "").encode()), 1024] + [m["size"] or 0 for m in row[S.MEDIA] or []]
    return sum(512 + -(-s // 512) * 512 for s in sizes)


def _members(row: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    media = row[S.MEDIA] or []
    header = {
        "fusionforge_record": 1,
        S.ID: row[S.ID],
        S.SOURCE: row[S.SOURCE],
        S.MODALITY: row[S.MODALITY],
        S.CONTENT_HASH: row[S.CONTENT_HASH],
        S.META: json.loads(row[S.META] or "{}"),
        S.SEGMENTS: row[S.SEGMENTS],
        S.MEDIA: [{k: v for k, v in m.items() if k not in ("bytes", "uri", "offset")} for m in media],
    }
    if row.get(S.PARENT_ID) is not None:  # a derived record (e.g. a scene clip) names its parent
        header[S.PARENT_ID] = row[S.PARENT_ID]
    members: list[tuple[str, Any]] = [(f"{key}.json", json.dumps(header, ensure_ascii=False, sort_keys=True).encode())]
    if row[S.TEXT] is not None:
        members.append((f"{key}.txt", row[S.TEXT].encode("utf-8")))
    for index, item in enumerate(media):
        ext = EXTENSIONS.get(item["format"] or "", item["format"] or "bin")
        name = f"{key}.{ext}" if len(media) == 1 else f"{key}.{index:03d}.{ext}"
        members.append((name, item))
    return members


def _write_shard(path: Path, rel: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write one tar; return the rows with media URIs pointing into it and their member table."""
    manifest = []
    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for row in rows:
            key = sample_key(row[S.ID])
            members = []
            for name, payload in _members(row, key):
                data = payload if isinstance(payload, bytes) else _media_bytes(payload)
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
                offset = tar.offset + tarfile.BLOCKSIZE  # a USTAR header is one block: keys keep names short
                tar.addfile(info, io.BytesIO(data))
                members.append({"name": name, "offset": offset, "size": len(data)})
                if not isinstance(payload, bytes):
                    payload.update(uri=rel, offset=offset, size=len(data), bytes=None)
            manifest.append({**row, "shard": rel, "key": key, "members": members})
    return manifest


def _media_bytes(item: dict[str, Any]) -> bytes:
    if item.get("bytes") is not None:
        return item["bytes"]
    return read_range(item["uri"], item["offset"], item["size"])


def _manifest_table(rows: list[dict[str, Any]], kept: pa.Table) -> pa.Table:
    extra_columns = [c for c in kept.column_names if c not in S.RECORD_SCHEMA.names]
    schema = pa.schema(list(S.RECORD_SCHEMA) + [kept.schema.field(c) for c in extra_columns] + MANIFEST_EXTRA)
    return pa.Table.from_pylist(rows, schema=schema)


def _without_bytes(table: pa.Table) -> pa.Table:
    media = [[{**m, "bytes": None} for m in items or []] for items in table.column(S.MEDIA).to_pylist()]
    return table.set_column(table.column_names.index(S.MEDIA), S.MEDIA, pa.array(media, pa.list_(S.MEDIA_TYPE)))


def _write_parquet(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
