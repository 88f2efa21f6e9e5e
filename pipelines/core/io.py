"""Files: atomic writes, shard naming, input expansion, compressed text.

Every output file is written to a temporary name in the same folder and renamed into place, so a
killed run never leaves a half-written shard under its final name (completion markers, written
after a unit's files, are ``lifecycle.py``'s).
"""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from fusionforge.pipelines.core.errors import ConfigError

WORK_DIR = "_work"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(text: str, max_len: int = 48) -> str:
    """A file-name-safe form of ``text`` (used in shard and member names)."""
    cleaned = _UNSAFE.sub("_", text).strip("_") or "x"
    return cleaned[:max_len]


def shard_name(source: str, partition: int, part: int) -> str:
    """Deterministic shard file name: from the source and the position of its input, never from timing."""
    return f"{safe_name(source)}-{partition:06d}-{part:03d}.tar"


def expand_paths(pattern: str, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files named by a path, a directory (recursive) or a glob, sorted; raise when nothing matches."""
    path = Path(pattern)
    if path.is_dir():
        found = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
    elif path.is_file():
        found = [path]
    else:
        found = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()]
    if suffixes is not None:
        found = [p for p in found if p.name.lower().endswith(suffixes)]
    if not found:
        raise ConfigError(f"no input files match {pattern!r}; check the path (directories, files and globs work)")
    return sorted(found)


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open a text file for reading, decompressing ``.gz``, ``.zst``/``.zstd`` and ``.bz2`` by suffix."""
    name = str(path).lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="strict")
    if name.endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8")
    if name.endswith((".zst", ".zstd")):
        import zstandard

        raw = open(path, "rb")  # noqa: SIM115 - closed through the wrapper
        stream = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.TextIOWrapper(stream, encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115 - the caller closes it


def strip_compression(name: str) -> str:
    """``docs.jsonl.gz`` -> ``docs.jsonl``."""
    for suffix in (".gz", ".zst", ".zstd", ".bz2"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_range(uri: str, offset: int | None, size: int | None) -> bytes:
    """Bytes of a whole file, or of ``size`` bytes at ``offset`` (a member inside a tar shard)."""
    with open(uri, "rb") as handle:
        if offset is None:
            return handle.read()
        handle.seek(offset)
        data = handle.read(size if size is not None else -1)
    if size is not None and len(data) != size:
        raise OSError(f"{uri}: expected {size} bytes at offset {offset}, got {len(data)} (file truncated?)")
    return data
