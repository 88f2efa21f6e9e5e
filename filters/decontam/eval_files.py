"""Evaluation files: ``NAME=PATH`` specs, and the samples of JSONL, Parquet and plain-text files.

A JSONL or Parquet row is one sample: its id is the row's ``id`` (else ``file:line`` / ``file:row``)
and its texts are its string fields and the strings of its list fields, except ids and labels. A
plain-text file (``.txt``, optionally compressed) has one sample per non-blank line. A line that is
no JSON object is counted as ``unreadable`` and skipped; a file that cannot be read at all is a
``ConfigError`` naming it, before any record is judged.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import expand_paths, open_text, safe_name, strip_compression

COMPRESSED = ("", ".gz", ".zst", ".zstd", ".bz2")
JSON_SUFFIXES = tuple(s + c for s in (".jsonl", ".json", ".ndjson") for c in COMPRESSED)
TEXT_SUFFIXES = tuple(".txt" + c for c in COMPRESSED)
EVAL_SUFFIXES = (*JSON_SUFFIXES, ".parquet", *TEXT_SUFFIXES)
NOT_TEXT = {
    "id",
    "idx",
    "uid",
    "uuid",
    "source",
    "split",
    "subject",
    "category",
    "level",
    "type",
    "url",
    "task",
    "lang",
    "language",
    "label",
    "difficulty",
}


def split_spec(text: str) -> tuple[str, str]:
    """``NAME=PATH`` or ``PATH`` -> (name, path); the name defaults to the path's stem."""
    name, sep, path = text.partition("=")
    if not sep or os.path.exists(text):
        name, path = "", text
    if not name:
        base = strip_compression(Path(path.rstrip("/*")).name or "eval")
        name = safe_name(base.rsplit(".", 1)[0] if "." in base else base)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        allowed = "letters, digits, '_', '.' and '-'"
        raise ConfigError(f"eval set name {name!r} may only hold {allowed}; name it: NAME={path}")
    return name, path


def eval_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(position, row) per sample of one file; None for a line that is no JSON object."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
                yield from enumerate(batch.to_pylist())
            return
        with open_text(path) as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                if name.endswith(TEXT_SUFFIXES):
                    yield line_no, {"text": line.rstrip("\n")}
                    continue
                yield line_no, _json_object(line)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # pyarrow's errors derive from these too
        raise ConfigError(f"eval file {path} cannot be read: {type(exc).__name__}: {exc}") from exc


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def plain_texts(row: dict[str, Any]) -> list[str]:
    """Each string field (and each string in a list field) except ids and labels."""
    texts = []
    for key, value in row.items():
        if key in NOT_TEXT:
            continue
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            texts.extend(v for v in value if isinstance(v, str))
    return texts


def eval_samples(path: str, name: str, stats: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(sample id, texts) per sample of the eval files ``path`` names (a file, folder or glob)."""
    for file in expand_paths(path, EVAL_SUFFIXES):
        for position, row in eval_rows(file):
            if row is None:
                stats["unreadable"] += 1
                continue
            stats["samples"] += 1
            yield sample_id(row, file, position), plain_texts(row)


def sample_id(row: dict[str, Any], file: Path, position: int) -> str:
    """The row's own ``id``, else where it sits (``file:line`` or ``file:row``)."""
    return str(row["id"]) if row.get("id") not in (None, "") else f"{file.name}:{position}"
