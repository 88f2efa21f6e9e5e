"""From the inputs a user names to a deterministic list of partitions of input files.

An input is ``PATH`` or ``NAME=PATH`` (a file, a directory or a glob). Its format is given, or
decided per file: by the extension first (``.tar``, images, videos), and by the first readable row
only where the extension says no more than JSONL/Parquet (text, pairs or interleaved). A folder of
mixed files reads each file by its own format. Files that are not read on their own are named in
the plan's ``skipped`` notes: media next to pairs/interleaved listings (the listings read them),
files of no known format, always the run's own output folder when it lies inside an input, and
the bookkeeping of an earlier step's output folder given as input (its ledger, manifest, report,
markers and rejected records; its shards, listings and media are read); sidecars are not named
(their media record reads them). Files are sorted, then grouped into partitions of about
``partition_mb``; a large uncompressed JSONL file is split at line boundaries
so that no partition needs the whole file. The plan depends only on the inputs' names, sizes and
first rows, so a resumed run finds the same partitions.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError, MissingDependency
from fusionforge.pipelines.core.executor_choice import files_bytes
from fusionforge.pipelines.core.io import expand_paths, safe_name, strip_compression
from fusionforge.pipelines.core.lifecycle import PLAN_FILE
from fusionforge.pipelines.readers.base import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputFile, ReaderOptions
from fusionforge.pipelines.readers.rows import iter_json_objects, iter_parquet_rows
from fusionforge.pipelines.writers.webdataset_writer import REJECTED_DIR

FORMATS = ("text", "pairs", "images", "interleaved", "videos", "wds", "warc", "html", "pdf")
STRUCTURED_SUFFIXES = tuple(s + c for s in (".jsonl", ".json", ".ndjson") for c in ("", ".gz", ".zst", ".zstd", ".bz2"))
STRUCTURED_SUFFIXES += (".parquet",)
FORMAT_SUFFIXES = {
    "text": STRUCTURED_SUFFIXES,
    "pairs": STRUCTURED_SUFFIXES,
    "interleaved": STRUCTURED_SUFFIXES,
    "images": tuple(IMAGE_EXTENSIONS),
    "videos": tuple(VIDEO_EXTENSIONS),
    "wds": (".tar",),
    "warc": (".warc", ".warc.gz"),
    "html": (".html", ".htm", ".xhtml"),
    "pdf": (".pdf",),
}
MEDIA_EXTENSIONS = {**IMAGE_EXTENSIONS, **VIDEO_EXTENSIONS}
LISTINGS = ("pairs", "interleaved")  # formats whose rows name media files
MEDIA_NAMING = (*LISTINGS, "html")  # formats that read the media files next to them (pages show images)
WEB_MODULES = {"warc": ("fastwarc", "resiliparse"), "html": ("resiliparse",), "pdf": ("pypdfium2",)}  # the web extra
SNIFF_BYTES = 4096  # what is read of a file whose name says nothing, to tell WARC, PDF and HTML apart
DETECT_ROWS = 100  # rows looked at to tell text, pairs and interleaved apart
SKIP_REASONS = {
    "output_folder": "this run's output folder, inside the input: never read as input",
    "run_bookkeeping": "an earlier step's ledger, manifest, report, markers and rejected records: its records are read",
    "listing_media": "media next to pairs/interleaved listings or HTML pages: read through the files that name them",
    "unknown_format": "no reader for these file types",
    "other_format": "not of the format given with --format",
}


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

    def planned_bytes(self) -> int:
        """The bytes this partition's files (or byte range) hold: what ``--executor auto`` weighs."""
        return sum((f.end if f.end is not None else files_bytes([f.path])) - f.start for f in self.files)


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


@dataclass(frozen=True)
class SkippedFiles:
    """Files of one input that are not read on their own, and why; the report names them."""

    source: str
    reason: str  # a key of SKIP_REASONS
    files: tuple[str, ...]

    def note(self, examples: int = 3) -> dict[str, Any]:
        """The report's entry: how many files, why, and the first few of them."""
        return {
            "source": self.source,
            "reason": self.reason,
            "files": len(self.files),
            "what": SKIP_REASONS[self.reason],
            "examples": list(self.files[:examples]),
        }


@dataclass(frozen=True)
class InputPlan:
    """The partitions to read, and the files of the inputs that are left out."""

    partitions: list[Partition]
    skipped: list[SkippedFiles]


def plan_inputs(specs: list[InputSpec], partition_mb: float = 512, output: str | None = None) -> InputPlan:
    """Partitions for all inputs, in the order given; sources must have distinct names.

    ``output`` is the folder the step writes: files inside it are never read as input, so an output
    folder kept inside an input folder is not read back by the next run, nor by its own ``--resume``.
    """
    seen: set[str] = set()
    for spec in specs:
        if spec.source in seen:
            raise ConfigError(f"two inputs are both named {spec.source!r}; name them apart with NAME=PATH")
        seen.add(spec.source)
    limit = max(1, int(partition_mb * 1024**2))
    partitions: list[Partition] = []
    skipped: list[SkippedFiles] = []
    for spec in specs:
        files, left_out = _input_files(spec, output)
        _check_modules({file.format for file in files})
        skipped += left_out
        for group in _group(files, limit):
            partitions.append(Partition(len(partitions), tuple(group)))
    return InputPlan(partitions, skipped)


def _input_files(spec: InputSpec, output: str | None) -> tuple[list[InputFile], list[SkippedFiles]]:
    paths, inside = _outside(expand_paths(spec.path), output)
    paths, bookkeeping = _records_only(paths)
    if not paths:
        raise ConfigError(f"every file of input {spec.path!r} lies in this run's output folder {output!r}")
    if spec.format == "auto":
        formats, left_out = classify(paths)
        if not formats:
            raise ConfigError(f"cannot tell the format of {spec.path!r}; pass --format ({', '.join(FORMATS)})")
    else:
        formats, left_out = _given_format(paths, spec.format)
        if not formats:
            raise ConfigError(f"no input files match {spec.path!r}; check the path (directories, files and globs work)")
    if inside:
        left_out = {"output_folder": inside, **left_out}
    if bookkeeping:
        left_out = {"run_bookkeeping": bookkeeping, **left_out}
    root = _root_of(spec.path)
    files = []
    for path, fmt in formats.items():
        rel = os.path.relpath(path, root) if root else path.name
        files.append(InputFile(path=str(path), rel=rel.replace(os.sep, "/"), source=spec.source, format=fmt))
    skipped = [SkippedFiles(spec.source, reason, tuple(map(str, found))) for reason, found in left_out.items()]
    return files, skipped


def _check_modules(formats: set[str]) -> None:
    """Refuse, before any work, formats whose libraries (the ``web`` extra) are not installed."""
    import importlib.util

    for fmt in sorted(formats & WEB_MODULES.keys()):
        for module in WEB_MODULES[fmt]:
            if importlib.util.find_spec(module) is None:
                raise MissingDependency(module, "web", f"to read {fmt} inputs")


def _outside(paths: list[Path], output: str | None) -> tuple[list[Path], list[Path]]:
    """(the files outside the output folder, the files inside it)."""
    if output is None or not os.path.isdir(output):
        return paths, []
    root = Path(output).resolve()
    inside = {p for p in paths if p.resolve().is_relative_to(root)}
    return [p for p in paths if p not in inside], [p for p in paths if p in inside]


def _records_only(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(the files that may hold records, the bookkeeping of fusionforge output folders among the inputs).

    An earlier step's output folder (one with ``_work/plan.json``) is read for its records: shards,
    listings and media. Its ledger, manifest, report, config, markers and scratch (names starting
    with ``_``), the tables at its top (``*.parquet``, ``*.json``, ``*.yaml``) and the records a filter
    rejected are the run's account of itself, not input.
    """
    runs: dict[Path, bool] = {}
    kept, bookkeeping = [], []
    for path in paths:
        run = next((folder for folder in path.parents if _is_run_folder(folder, runs)), None)
        if run is None:
            kept.append(path)
            continue
        parts = path.relative_to(run).parts
        top_table = len(parts) == 1 and path.suffix.lower() in (".parquet", ".json", ".yaml")
        if top_table or parts[0] == REJECTED_DIR or any(part.startswith("_") for part in parts):
            bookkeeping.append(path)
        else:
            kept.append(path)
    return kept, bookkeeping


def _is_run_folder(folder: Path, seen: dict[Path, bool]) -> bool:
    if folder not in seen:
        seen[folder] = (folder / PLAN_FILE).is_file()
    return seen[folder]


def classify(paths: list[Path]) -> tuple[dict[Path, str], dict[str, list[Path]]]:
    """Each file's format (in path order), and the files left out, by reason.

    ``.tar`` is WebDataset, image and video extensions are media, and a JSONL/Parquet file is text,
    pairs or interleaved by its first readable row (one with none, damaged or empty, takes the format
    of the input's other listings, else text, and gets its ``unreadable_file`` row when read).
    """
    stems = _media_stems(paths)
    found: dict[Path, str | None] = {}
    left_out: dict[str, list[Path]] = {}
    for path in paths:
        fmt = _format_by_name(path)
        if _is_sidecar(path, stems):
            continue
        if fmt is None:
            left_out.setdefault("unknown_format", []).append(path)
        else:
            found[path] = detect_structured(path) if fmt == "structured" else fmt
    fallback = next((fmt for fmt in found.values() if fmt in ("text", *LISTINGS)), "text")
    formats = {path: fmt or fallback for path, fmt in found.items()}
    folders = {path.parent for path, fmt in formats.items() if fmt in MEDIA_NAMING}
    for path, fmt in list(formats.items()):
        if fmt in ("images", "videos") and any(folder in path.parents for folder in folders):
            del formats[path]
            left_out.setdefault("listing_media", []).append(path)
    return formats, left_out


def _given_format(paths: list[Path], fmt: str) -> tuple[dict[Path, str], dict[str, list[Path]]]:
    """The files of the format named with ``--format``; the others are left out (sidecars silently)."""
    stems = _media_stems(paths)
    formats: dict[Path, str] = {}
    left_out: dict[str, list[Path]] = {}
    for path in paths:
        if path.name.lower().endswith(FORMAT_SUFFIXES[fmt]):
            formats[path] = fmt
        elif fmt in MEDIA_NAMING and path.suffix.lower() in MEDIA_EXTENSIONS:
            left_out.setdefault("listing_media", []).append(path)
        elif not (fmt in ("images", "videos") and _is_sidecar(path, stems)):
            left_out.setdefault("other_format", []).append(path)
    return formats, left_out


def _format_by_name(path: Path) -> str | None:
    """``wds``, ``images``, ``videos``, a web format, ``structured`` (JSONL/Parquet: the rows decide), or
    what the first bytes show when the name says nothing (``sniff_format``)."""
    name, suffix = path.name.lower(), path.suffix.lower()
    if name.endswith(".tar"):
        return "wds"
    for fmt in ("warc", "html", "pdf"):
        if name.endswith(FORMAT_SUFFIXES[fmt]):
            return fmt
    if suffix in IMAGE_EXTENSIONS:
        return "images"
    if suffix in VIDEO_EXTENSIONS:
        return "videos"
    if name.endswith(STRUCTURED_SUFFIXES):
        return "structured"
    return sniff_format(path)


def sniff_format(path: Path) -> str | None:
    """``warc``, ``pdf`` or ``html`` by a file's first bytes (a gzip stream is looked into), or None."""
    import zlib

    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return None
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return None
    if head.startswith(b"WARC/"):
        return "warc"
    if head.startswith(b"%PDF-"):
        return "pdf"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return "html" if start.startswith((b"<!doctype html", b"<html")) else None


def _media_stems(paths: list[Path]) -> set[Path]:
    return {p.with_suffix("") for p in paths if p.suffix.lower() in MEDIA_EXTENSIONS}


def _is_sidecar(path: Path, media_stems: set[Path]) -> bool:
    """``a.txt`` / ``a.json`` next to ``a.jpg``: read with the media file, not on its own."""
    return path.suffix.lower() in (".txt", ".json") and path.with_suffix("") in media_stems


def detect_structured(path: Path) -> str | None:
    """``interleaved``, ``pairs`` or ``text`` by the first readable of the first rows; None if none is."""
    options = ReaderOptions()
    file = InputFile(str(path), path.name, "detect", "text")
    parquet = path.name.lower().endswith(".parquet")
    rows = iter_parquet_rows(file, batch_size=16) if parquet else iter_json_objects(file)
    for _, row in itertools.islice(rows, DETECT_ROWS):
        if isinstance(row, dict):
            if isinstance(row.get(options.parts_field), list) or ("texts" in row and "images" in row):
                return "interleaved"
            if options.image_field in row or options.video_field in row:
                return "pairs"
            return "text"
    return None


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
