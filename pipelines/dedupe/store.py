"""Per-partition sketch files under ``OUT/_work/dedupe``: written once, then read by (partition, row).

For each input shard (partition) the sketch phase writes, atomically (the job marks it done after):

- ``items-P.parquet``: one row per dedup item (a record's text, image or video) with its exact key,
  length, score, hashes and any error; ``item = global_row * 1024 + slot`` (slot 0: text, 1 + i: media i);
- ``sigs-P.npy``: the MinHash signature of every record row (uint32, rows x num_perm);
- ``shingles-P.npy`` / ``shingle_offsets-P.npy``: each row's shingle set, for the exact re-check;
- ``bands-P.parquet``: the LSH band rows that the shuffle groups.

Nothing holds the corpus in memory: verification memory-maps the signature files and reads the few
rows it needs, on whichever worker it runs (the output folder is shared, as for the shards).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from fusionforge.filters.dedup import sketch as sk
from fusionforge.filters.dedup.hamming import band_masks, hash_band_rows
from fusionforge.filters.dedup.image_hash import THUMB_SIDE
from fusionforge.filters.dedup.lsh import BAND_COLUMNS, band_keys, band_rows
from fusionforge.filters.dedup.minhash import EMPTY
from fusionforge.filters.dedup.video_hash import anchor_hashes
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.io import WORK_DIR, atomic_path

STORE_DIR = f"{WORK_DIR}/dedupe"  # under the output folder; removed once the run is finished
SLOTS = 1024
ITEM_ROW_GROUP = 1024  # rows per row group of an items file: thumbnails are read a few groups at a time
TEXT, IMAGE, VIDEO = 0, 1, 2
SPACES = {TEXT: "text", IMAGE: "image", VIDEO: "video"}
ITEM_SCHEMA = pa.schema(
    [
        ("item", pa.int64()),
        ("row", pa.int64()),
        ("space", pa.int8()),
        ("primary", pa.bool_()),
        ("id", pa.string()),
        ("media_index", pa.int32()),
        ("exact_hi", pa.uint64()),
        ("exact_lo", pa.uint64()),
        ("length", pa.float64()),
        ("score", pa.float64()),
        ("hashes", pa.binary()),
        ("thumbs", pa.binary()),
        ("usable", pa.bool_()),
        ("error", pa.string()),
    ]
)


def file_path(root: Path, kind: str, partition: int, ext: str) -> Path:
    return root / f"{kind}-{partition:06d}.{ext}"


def write_sketches(
    root: str, starts: tuple[int, ...], params: dict[str, Any], partition: int, table: pa.Table
) -> dict[str, Any]:
    """The sketch phase's partition writer: items, signatures, shingles and band rows of one input shard."""
    root_path = Path(root)
    start = starts[partition]
    n = table.num_rows
    rows = start + np.arange(n, dtype=np.int64)
    ids, sources = table.column(S.ID).to_pylist(), table.column(S.SOURCE).to_pylist()
    salts = np.array([xxhash.xxh64_intdigest(s.encode()) if params["within_source"] else 0 for s in sources], np.uint64)
    score_col = params["score_column"]
    scores = (
        np.asarray(table.column(score_col).cast(pa.float64()).fill_null(np.nan)) if score_col else np.full(n, np.nan)
    )
    errors = table.column(S.ERROR).to_pylist()
    item_rows: list[dict[str, Any]] = []
    signatures = np.full((n, params["num_perm"]), EMPTY, np.uint32)
    shingle_parts: list[np.ndarray] = []
    shingle_counts = np.zeros(n, np.int64)
    band_tables = [
        _text_items(
            table, rows, ids, salts, scores, errors, params, signatures, shingle_parts, shingle_counts, item_rows
        )
    ]
    band_tables += _media_items(table, rows, ids, salts, scores, errors, params, item_rows)
    items = pa.Table.from_pylist(item_rows, schema=ITEM_SCHEMA)
    bands = pa.table({c: np.concatenate([t[c] for t in band_tables]) for c in BAND_COLUMNS})
    save_npy(file_path(root_path, "sigs", partition, "npy"), signatures)
    if params["keep_shingles"]:
        values = np.concatenate(shingle_parts) if shingle_parts else np.empty(0, np.uint32)
        save_npy(file_path(root_path, "shingles", partition, "npy"), values)
        save_npy(file_path(root_path, "shingle_offsets", partition, "npy"), np.r_[0, np.cumsum(shingle_counts)])
    _save_parquet(file_path(root_path, "items", partition, "parquet"), items, ITEM_ROW_GROUP)
    _save_parquet(file_path(root_path, "bands", partition, "parquet"), bands)
    spaces = items.column("space").to_numpy()
    return {
        "partition": partition,
        "records": n,
        "band_rows": bands.num_rows,
        "items": {SPACES[s]: int((spaces == s).sum()) for s in SPACES},
        "failed_items": items.num_rows - int(pc.sum(items.column("usable")).as_py() or 0),
    }


def _text_items(
    table, rows, ids, salts, scores, errors, params, signatures, shingle_parts, shingle_counts, item_rows
) -> dict[str, np.ndarray]:
    present = table.column(sk.column("signature")).is_valid().to_numpy(zero_copy_only=False)
    local = np.flatnonzero(present)
    sig_col = table.column(sk.column("signature")).to_pylist()
    shingle_col = table.column(sk.column("shingles")).to_pylist()
    hi = table.column(sk.column("text_exact_hi")).to_pylist()
    lo = table.column(sk.column("text_exact_lo")).to_pylist()
    length = table.column(sk.column("text_length")).to_pylist()
    exact = np.zeros((len(local), 2), np.uint64)
    for k, r in enumerate(local):
        signatures[r] = np.frombuffer(sig_col[r], "<u4")
        if shingle_col[r] is not None:
            shingle_parts.append(np.frombuffer(shingle_col[r], "<u4"))
            shingle_counts[r] = len(shingle_parts[-1])
        exact[k] = (hi[r], lo[r])
        item_rows.append(
            {
                "item": int(rows[r]) * SLOTS,
                "row": int(rows[r]),
                "space": TEXT,
                "primary": True,
                "id": ids[r],
                "media_index": None,
                "exact_hi": hi[r],
                "exact_lo": lo[r],
                "length": float(length[r]),
                "score": float(scores[r]),
                "hashes": None,
                "thumbs": None,
                "usable": True,
                "error": None,
            }
        )
    for r in np.flatnonzero(~present):
        if errors[r] is not None and table.column(S.MODALITY)[int(r)].as_py() in sk.TEXT_MODALITIES:
            item_rows.append(_failed(rows[r], 0, TEXT, True, ids[r], None, errors[r]))
    bands, rows_per_band = params["bands"], params["rows"]
    keys = band_keys(signatures[local], bands, rows_per_band) ^ salts[local][:, None]
    has_shingles = (signatures[local] != EMPTY).any(axis=1)
    return band_rows(TEXT, rows[local] * SLOTS, exact ^ salts[local][:, None], keys, has_shingles)


def _media_items(table, rows, ids, salts, scores, errors, params, item_rows) -> list[dict[str, np.ndarray]]:
    collected: dict[int, list[tuple]] = {IMAGE: [], VIDEO: []}
    for r, media in enumerate(table.column(sk.column("media")).to_pylist()):
        for entry in media or []:
            space = IMAGE if entry["kind"] == "image" else VIDEO
            item = int(rows[r]) * SLOTS + 1 + entry["index"]
            if entry["error"] is not None:
                item_rows.append(
                    _failed(
                        rows[r], 1 + entry["index"], space, entry["primary"], ids[r], entry["index"], entry["error"]
                    )
                )
                continue
            item_rows.append(
                {
                    "item": item,
                    "row": int(rows[r]),
                    "space": space,
                    "primary": entry["primary"],
                    "id": ids[r],
                    "media_index": entry["index"],
                    "exact_hi": entry["exact_hi"],
                    "exact_lo": entry["exact_lo"],
                    "length": entry["size"],
                    "score": float(scores[r]),
                    "hashes": entry["hashes"],
                    "thumbs": entry["thumbs"],
                    "usable": True,
                    "error": None,
                }
            )
            collected[space].append(
                (item, entry["exact_hi"], entry["exact_lo"], salts[r], np.frombuffer(entry["hashes"], "<u8"))
            )
    out = []
    for space, entries in collected.items():
        if not entries:
            continue
        items = np.array([e[0] for e in entries], np.int64)
        salt = np.array([e[3] for e in entries], np.uint64)
        exact = np.array([(e[1], e[2]) for e in entries], np.uint64) ^ salt[:, None]
        name = SPACES[space]
        masks = band_masks(params[f"{name}_band_bits"], params[f"{name}_bands"])
        if space == IMAGE:  # own hash stored, crops probe
            hashes, per_column = np.stack([e[4] for e in entries]), False
        else:  # anchor frame i meets anchor frame i
            hashes, per_column = np.stack([anchor_hashes(e[4]) for e in entries]), True
        table_rows = hash_band_rows(space, items, exact, hashes, masks, np.ones(len(items), bool), per_column)
        lsh = table_rows["band"] >= 0
        table_rows["key"] = np.where(
            lsh, table_rows["key"] ^ salt[np.searchsorted(items, table_rows["item"])], table_rows["key"]
        )
        out.append(table_rows)
    return out


def _failed(row, slot, space, primary, record_id, media_index, error) -> dict[str, Any]:
    return {
        "item": int(row) * SLOTS + slot,
        "row": int(row),
        "space": space,
        "primary": primary,
        "id": record_id,
        "media_index": media_index,
        "exact_hi": None,
        "exact_lo": None,
        "length": None,
        "score": None,
        "hashes": None,
        "thumbs": None,
        "usable": False,
        "error": error,
    }


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (a temporary name, then a rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def _save_parquet(path: Path, table: pa.Table, row_group_size: int | None = None) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size)


def locate_items(starts: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(partition, row inside the partition) of each item, from the partitions' first global rows."""
    rows = np.asarray(items, np.int64) // SLOTS
    partitions = np.searchsorted(starts, rows, side="right") - 1
    return partitions, rows - starts[partitions]


class SketchReader:
    """Random access to the sketch files by item: signatures, shingle sets, hashes (cached per process)."""

    def __init__(self, root: str | Path, starts: tuple[int, ...]) -> None:
        self.root = Path(root)
        self.starts = np.asarray(starts, np.int64)

    def locate(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(partition, row inside the partition) of each item."""
        return locate_items(self.starts, items)

    def signatures(self, items: np.ndarray) -> np.ndarray:
        partitions, local = self.locate(items)
        out = np.empty((len(partitions), 0), np.uint32)
        for p in np.unique(partitions):
            sigs = memmap(str(file_path(self.root, "sigs", int(p), "npy")))
            if out.shape[1] == 0:
                out = np.empty((len(partitions), sigs.shape[1]), np.uint32)
            mask = partitions == p
            out[mask] = sigs[local[mask]]
        return out

    def shingle_set(self, item: int) -> np.ndarray:
        partitions, local = self.locate(np.array([item]))
        p, r = int(partitions[0]), int(local[0])
        offsets = memmap(str(file_path(self.root, "shingle_offsets", p, "npy")))
        values = memmap(str(file_path(self.root, "shingles", p, "npy")))
        return np.asarray(values[offsets[r] : offsets[r + 1]])

    def hashes(self, item: int) -> np.ndarray:
        """An image's hashes (own, then crops) or a video's frame hashes."""
        partitions, _ = self.locate(np.array([item]))
        blob = _item_hashes(str(file_path(self.root, "items", int(partitions[0]), "parquet"))).get(int(item))
        return np.empty(0, np.uint64) if blob is None else np.frombuffer(blob, "<u8").astype(np.uint64)

    def thumbs_of(self, items: np.ndarray) -> dict[int, np.ndarray]:
        """Each item's colour thumbnails (own, then crops), ``(k, 16, 16, 3)`` uint8; ``(0, ...)`` for none.

        Read for these items only and not kept: at 7.7 KB an image, a cache of whole sketch files held
        1.2 GB in the 1M soak's group+verify (16 files of 15,000 images). The items files' row groups
        of ``ITEM_ROW_GROUP`` rows let the reader skip the groups that hold none of them.
        """
        items = np.unique(np.asarray(items, np.int64))
        partitions, _ = self.locate(items)
        out = {int(i): np.empty((0, THUMB_SIDE, THUMB_SIDE, 3), np.uint8) for i in items}
        for p in np.unique(partitions):
            wanted = items[partitions == p].tolist()
            path = file_path(self.root, "items", int(p), "parquet")
            table = pq.read_table(path, columns=["item", "thumbs"], filters=[("item", "in", wanted)])
            for item, blob in zip(table.column("item").to_pylist(), table.column("thumbs").to_pylist()):
                out[item] = np.frombuffer(blob or b"", np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE, 3)
        return out


def memmap(path: str) -> np.ndarray:
    """A stored ``.npy`` memory-mapped, cached per process (a rewritten file is opened anew)."""
    return _memmap(path, os.stat(path).st_mtime_ns)


@lru_cache(maxsize=64)
def _memmap(path: str, _mtime_ns: int) -> np.ndarray:
    return np.load(path, mmap_mode="r")


@lru_cache(maxsize=16)
def _item_hashes(path: str) -> dict[int, bytes | None]:
    """A sketch file's hashes by item (80 bytes an image; the thumbnails are read apart, by ``thumbs_of``)."""
    table = pq.read_table(path, columns=["item", "hashes"])
    return dict(zip(table.column("item").to_pylist(), table.column("hashes").to_pylist()))
