"""From the inputs a user names to a deterministic list of partitions of input files.

An input is ``PATH`` or ``NAME=PATH`` (a file, a directory or a glob); its format is given or
detected. Files are sorted, then grouped into partitions of about ``partition_mb``; a large
uncompressed JSONL file is split at line boundaries so that no partition needs the whole file.
The plan depends only on the inputs' names and sizes, so a resumed run finds the same partitions.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import expand_paths, safe_name, strip_compression
from fusionforge.pipelines.readers.base import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    InputFile,
    ReaderOptions,
    iter_structured,
)

FORMATS = ("text", "pairs", "images", "interleaved", "videos", "wds")
STRUCTURED_SUFFIXES = tuple(s + c for s in (".jsonl", ".json", ".ndjson") for c in ("", ".gz", ".zst", ".zstd", ".bz2"))
STRUCTURED_SUFFIXES += (".parquet",)


@dataclass(frozen=True)
class InputSpec:
    """One input as named on the command line."""

    path: str
    source: str
    format: str = "auto"


@dataclass(frozen=True)
class Partition:
    """A unit of work and of resume: consecutive files (or one byte range) of one source."""

    index: int
    files: tuple[InputFile, ...]

    @property
    def source(self) -> str:
        return self.files[0].source


def parse_input(text: str, default_format: str = "auto") -> InputSpec:
    """``NAME=PATH`` or ``PATH`` (the source name is then the path's stem)."""
    name, sep, path = text.partition("=")
    if not sep or os.path.exists(text):
        name, path = "", text
    if default_format not in (*FORMATS, "auto"):
        raise ConfigError(f"unknown format {default_format!r}; use one of: auto, {', '.join(FORMATS)}")
    source = name or _stem(path)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", source):
        allowed = "letters, digits, '_', '.' and '-'"
        raise ConfigError(f"source name {source!r} may only hold {allowed}; name it: NAME={path}")
    return InputSpec(path=path, source=source, format=default_format)


def _stem(path: str) -> str:
    base = Path(path.rstrip("/*")).name or "input"
    base = strip_compression(base)
    return safe_name(base.rsplit(".", 1)[0] if "." in base else base)


def plan_partitions(specs: list[InputSpec], partition_mb: float = 512) -> list[Partition]:
    """Partitions for all inputs, in the order given; sources must have distinct names."""
    seen: set[str] = set()
    for spec in specs:
        if spec.source in seen:
            raise ConfigError(f"two inputs are both named {spec.source!r}; name them apart with NAME=PATH")
        seen.add(spec.source)
    limit = max(1, int(partition_mb * 1024**2))
    partitions: list[Partition] = []
    for spec in specs:
        for group in _group(_input_files(spec), limit):
            partitions.append(Partition(len(partitions), tuple(group)))
    return partitions


def _input_files(spec: InputSpec) -> list[InputFile]:
    fmt = spec.format if spec.format != "auto" else detect_format(spec.path)
    suffixes = {
        "text": STRUCTURED_SUFFIXES,
        "pairs": STRUCTURED_SUFFIXES,
        "interleaved": STRUCTURED_SUFFIXES,
        "images": tuple(IMAGE_EXTENSIONS),
        "videos": tuple(VIDEO_EXTENSIONS),
        "wds": (".tar",),
    }[fmt]
    root = _root_of(spec.path)
    files = []
    for path in expand_paths(spec.path, suffixes):
        rel = os.path.relpath(path, root) if root else path.name
        files.append(InputFile(path=str(path), rel=rel.replace(os.sep, "/"), source=spec.source, format=fmt))
    return files


def _root_of(pattern: str) -> str | None:
    path = Path(pattern)
    if path.is_dir():
        return str(path)
    if path.is_file():
        return str(path.parent)
    static = []
    for part in path.parts:
        if any(ch in part for ch in "*?["):
            break
        static.append(part)
    return str(Path(*static)) if static else None


def _group(files: list[InputFile], limit: int) -> list[list[InputFile]]:
    groups: list[list[InputFile]] = []
    current: list[InputFile] = []
    size = 0
    for file in files:
        file_size = os.path.getsize(file.path)
        if file_size > limit and file.path.lower().endswith((".jsonl", ".ndjson", ".json")):
            if current:
                groups.append(current)
                current, size = [], 0
            groups.extend([piece] for piece in split_jsonl(file, limit))
            continue
        if current and size + file_size > limit:
            groups.append(current)
            current, size = [], 0
        current.append(file)
        size += file_size
    if current:
        groups.append(current)
    return groups


def split_jsonl(file: InputFile, limit: int) -> list[InputFile]:
    """Byte ranges of about ``limit`` bytes that start at line starts, with their first line numbers."""
    pieces = []
    total = os.path.getsize(file.path)
    start, first_line = 0, 1
    with open(file.path, "rb") as handle:
        while start < total:
            handle.seek(min(start + limit, total))
            if handle.tell() < total:
                handle.readline()  # move to the next line start
            end = min(handle.tell(), total)
            lines = _count_newlines(handle, start, end)
            pieces.append(InputFile(file.path, file.rel, file.source, file.format, start, end, first_line))
            start, first_line = end, first_line + lines
    return pieces


def _count_newlines(handle, start: int, end: int, chunk: int = 16 * 1024**2) -> int:
    handle.seek(start)
    count, left = 0, end - start
    while left > 0:
        data = handle.read(min(chunk, left))
        if not data:
            break
        count += data.count(b"\n")
        left -= len(data)
    handle.seek(end)
    return count


def detect_format(path: str) -> str:
    """Guess an input's format from its files, or fail and say how to name it."""
    files = expand_paths(path)
    names = [f.name.lower() for f in files]
    if any(n.endswith(".tar") for n in names):
        return "wds"
    media_stems = {f.with_suffix("") for f in files if f.suffix.lower() in {**IMAGE_EXTENSIONS, **VIDEO_EXTENSIONS}}
    structured = [
        f for f, n in zip(files, names) if n.endswith(STRUCTURED_SUFFIXES) and f.with_suffix("") not in media_stems
    ]  # a .json next to a.jpg is a sidecar
    if structured:
        return _detect_structured(structured[0])
    if any(Path(n).suffix in VIDEO_EXTENSIONS for n in names):
        return "videos"
    if any(Path(n).suffix in IMAGE_EXTENSIONS for n in names):
        return "images"
    raise ConfigError(f"cannot tell the format of {path!r}; pass --format ({', '.join(FORMATS)})")


def _detect_structured(path: Path) -> str:
    options = ReaderOptions()
    file = InputFile(str(path), path.name, "detect", "text")
    for _, row in iter_structured(file):
        if isinstance(row, dict):
            if isinstance(row.get(options.parts_field), list) or ("texts" in row and "images" in row):
                return "interleaved"
            if options.image_field in row or options.video_field in row:
                return "pairs"
            return "text"
    raise ConfigError(f"cannot tell the format of {path}: no readable row; pass --format")


def describe(partitions: list[Partition]) -> list[dict]:
    """The plan as plain data, written next to outputs and compared on --resume."""
    return [
        {"index": p.index, "files": [[f.path, f.format, f.start, f.end, os.path.getsize(f.path)] for f in p.files]}
        for p in partitions
    ]


def plan_fingerprint(partitions: list[Partition]) -> str:
    """A hash of the plan; a resumed run must see the same one."""
    import hashlib

    return hashlib.sha256(json.dumps(describe(partitions), sort_keys=True).encode()).hexdigest()[:16]
