"""The embeddings of ``dedupe --semantic``, kept in the output under ``_embeddings/`` for re-tuning.

Per input shard (partition), written atomically before the shard's marker:

- ``items-P.parquet``: one row per record that has an embedding or whose primary item failed:
  ``item`` (``global_row * 1024``, as in the hash dedupe's store), ``row``, ``space``, ``position``
  (its row in the space's matrix), ``id``, exact key, ``length`` and ``error``;
- ``{text|image|video}-P.npy``: the unit-norm float32 embeddings of that space, in input order.

``meta.json`` (written once every shard is embedded) names the input and the embedding settings;
``--reuse-embeddings`` checks both before it takes the files, so a new threshold, cluster count or
keep policy runs without a model.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fusionforge.filters.dedup import embed as E
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.dedupe.store import SLOTS, SPACES, file_path, locate_items, memmap, save_npy

EMBED_DIR = "_embeddings"
META = "meta.json"
ITEM_SCHEMA = pa.schema(
    [
        ("item", pa.int64()),
        ("row", pa.int64()),
        ("space", pa.int8()),
        ("position", pa.int64()),
        ("id", pa.string()),
        ("exact_hi", pa.uint64()),
        ("exact_lo", pa.uint64()),
        ("length", pa.float64()),
        ("error", pa.string()),
    ]
)


def write_embeddings(root: str, starts: tuple[int, ...], partition: int, table: pa.Table) -> dict[str, Any]:
    """The embed phase's partition writer: the items file and one matrix per space of one input shard."""
    folder = Path(root)
    rows = starts[partition] + np.arange(table.num_rows, dtype=np.int64)
    spaces = table.column(E.column("space")).to_numpy(zero_copy_only=False)
    errors = table.column(S.ERROR).to_pylist()
    failed = np.array([e is not None and e.startswith("dedupe:") for e in errors], bool)
    has_space = ~np.isnan(spaces.astype(np.float64))
    positions = np.full(table.num_rows, -1, np.int64)
    counts = {}
    for space, name in SPACES.items():
        mask = has_space & (spaces == space)
        positions[mask] = np.arange(int(mask.sum()))
        blobs = table.column(E.column("embedding")).filter(pa.array(mask)).to_pylist()
        matrix = np.stack([np.frombuffer(b, "<f4") for b in blobs]) if blobs else np.empty((0, 0), np.float32)
        save_npy(file_path(folder, name, partition, "npy"), matrix)
        counts[name] = len(blobs)
    keep = pa.array(has_space | failed)
    items = pa.table(
        {
            "item": rows * SLOTS,
            "row": rows,
            "space": pa.array(np.where(has_space, spaces, -1).astype(np.int8)),
            "position": positions,
            "id": table.column(S.ID),
            "exact_hi": table.column(E.column("exact_hi")),
            "exact_lo": table.column(E.column("exact_lo")),
            "length": table.column(E.column("length")),
            "error": pa.array([e if f else None for e, f in zip(errors, failed)], pa.string()),
        },
        schema=ITEM_SCHEMA,
    ).filter(keep)
    with atomic_path(file_path(folder, "items", partition, "parquet")) as tmp:
        pq.write_table(items, tmp)
    return {"partition": partition, "records": table.num_rows, "items": counts, "failed_items": int(failed.sum())}


def write_meta(root: Path, meta: dict[str, Any]) -> None:
    with atomic_path(root / META) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2, sort_keys=True))


def read_meta(root: Path) -> dict[str, Any] | None:
    path = root / META
    return json.loads(path.read_text()) if path.exists() else None


def reusable_embeddings(source: str, expected: dict[str, Any]) -> Path:
    """The ``_embeddings`` folder of an earlier run (its output folder or the folder itself), checked.

    Refused unless that run embedded the same input with the same models and settings.
    """
    folder = Path(source)
    folder = folder / EMBED_DIR if (folder / EMBED_DIR).is_dir() else folder
    meta = read_meta(folder)
    if meta is None:
        raise ConfigError(f"--reuse-embeddings {source}: no finished semantic dedupe embeddings there ({META} missing)")
    differing = sorted(k for k in set(meta) | set(expected) if meta.get(k) != expected.get(k))
    if differing:
        detail = "; ".join(f"{k}: {meta.get(k)!r} there, {expected.get(k)!r} now" for k in differing)
        raise ConfigError(f"--reuse-embeddings {source}: embedded with other settings ({detail})")
    return folder


def take_embeddings(folder: Path, target: Path) -> None:
    """Hard-link (or copy, across file systems) a checked ``_embeddings`` folder into ``target``; files are
    never modified after they are written, so a link is safe."""
    if folder.resolve() == target.resolve():
        return
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        if path.name == META or not path.is_file():
            continue
        with atomic_path(target / path.name) as tmp:
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
    write_meta(target, read_meta(folder))


class EmbeddingReader:
    """Read access to the stored embeddings: per partition and space, or by item (memory-mapped)."""

    def __init__(self, root: str | Path, starts: tuple[int, ...]) -> None:
        self.root = Path(root)
        self.starts = np.asarray(starts, np.int64)

    def locate(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(partition, row inside the partition) of each item."""
        return locate_items(self.starts, items)

    def items(self, partition: int, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(file_path(self.root, "items", partition, "parquet"), columns=columns)

    def matrix(self, space: int, partition: int) -> np.ndarray:
        return memmap(str(file_path(self.root, SPACES[space], partition, "npy")))

    def space_items(self, space: int, partition: int) -> np.ndarray:
        """Items of ``space`` in ``partition``, in the order of its matrix rows."""
        table = self.items(partition, ["item", "space", "position"])
        table = table.filter(pc.equal(table.column("space"), space)).sort_by("position")
        return table.column("item").to_numpy()

    def vectors(self, space: int, items: np.ndarray) -> np.ndarray:
        """The embeddings of ``items`` (all of ``space``), in the order given."""
        partitions, _ = self.locate(items)
        out: np.ndarray | None = None
        for p in np.unique(partitions):
            wanted = np.flatnonzero(partitions == p)
            own = self.space_items(space, int(p))
            matrix = self.matrix(space, int(p))
            if out is None:
                out = np.empty((len(items), matrix.shape[1]), np.float32)
            out[wanted] = matrix[np.searchsorted(own, np.asarray(items)[wanted])]
        return out if out is not None else np.empty((0, 0), np.float32)
