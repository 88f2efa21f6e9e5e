"""Find what to read: the Parquet files of fusionforge outputs, classified, split into units of work.

An output folder is read as its run left it. A finished run (``_SUCCESS``) is read from its merged
``manifest.parquet`` and ``ledger.parquet`` (leftover ``_parts/`` are ignored: they would be counted
twice). An unfinished run is read from the parts of the partitions that have a completion marker,
the same rule ``--resume`` trusts, so a killed-and-resumed run never counts a partition twice and an
audit of a running job shows the work that is done. Any other Parquet file is classified by its
columns: records (manifest or rejected), ledger, dedupe clusters, pack plan, SFT set, or RFT results.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from fusionforge.mixers.audit.clusters import is_clusters_schema
from fusionforge.mixers.audit.ledger_stats import LEDGER_COLUMNS
from fusionforge.mixers.audit.plan import is_plan_schema
from fusionforge.mixers.audit.posttraining import is_rft_prompts_schema, is_rft_samples_schema, is_sft_schema
from fusionforge.pipelines.core.bounds import POSITIVE_FRACTION
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import WORK_DIR
from fusionforge.pipelines.core.lifecycle import CONFIG, MARKER_DIR, PARTITION, REPORT, Markers, is_finished
from fusionforge.pipelines.writers.manifest import LEDGER as LEDGER_FILE
from fusionforge.pipelines.writers.manifest import MANIFEST as MANIFEST_FILE
from fusionforge.pipelines.writers.webdataset_writer import PARTS_DIR, REJECTED_DIR, SHARD_DIR

MANIFEST, REJECTED, LEDGER, CLUSTERS, PLAN = "manifest", "rejected", "ledger", "clusters", "plan"  # file kinds
SFT, RFT_PROMPTS, RFT_SAMPLES = "sft", "rft_prompts", "rft_samples"
WHOLE_KINDS = (CLUSTERS, SFT, RFT_PROMPTS, RFT_SAMPLES)  # always read in full, also with --sample
UNIT_ROWS = 262_144  # rows per unit of work (whole row groups)
_SKIP_DIRS = {SHARD_DIR, PARTS_DIR, WORK_DIR, MARKER_DIR, REJECTED_DIR}
_PART = re.compile(r"-(\d{6})\.parquet$")


@dataclass(frozen=True)
class Output:
    """One output folder (or a lone Parquet file) and what is known about the run that wrote it."""

    path: str
    step: str
    complete: bool
    upstream: str | None = None
    seq_len: int | None = None
    partitions_done: int | None = None  # unfinished runs: partitions with a completion marker
    partitions_seen: int | None = None
    vision_ratio: float | None = None  # the target vision share a pack run recorded in its config


@dataclass(frozen=True)
class Unit:
    """Whole row groups of one file: the smallest piece of work, folded into one partial state."""

    path: str
    kind: str
    step: str
    row_groups: tuple[int, ...]
    rows: int
    seq_len: int | None = None
    weight: float = 1.0  # 1 / sampled fraction of the file's rows (1.0: exact)


@dataclass
class Discovery:
    outputs: list[Output] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path (why)"
    rows_total: int = 0


def discover(
    paths: list[str], sample: float | None = None, seed: int = 0, upstream: bool = False, unit_rows: int = UNIT_ROWS
) -> Discovery:
    """Classify every Parquet file under ``paths``; with ``upstream``, also the outputs they were made from."""
    POSITIVE_FRACTION.require("sample", sample)
    found = Discovery()
    queue = [Path(p) for p in paths]
    seen: set[Path] = set()
    files_seen: set[Path] = set()
    while queue:
        path = queue.pop(0)
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        if not path.exists():
            raise ConfigError(f"{path} does not exist; give an output folder or a Parquet file of fusionforge")
        output, files = _output_files(path) if path.is_dir() and is_output(path) else _loose_files(path)
        found.outputs.append(output)
        for file, kind in files:
            if file.resolve() in files_seen:  # named twice (a folder and a file in it): read once
                continue
            files_seen.add(file.resolve())
            kind = kind or _classify(file)
            if kind is None:
                found.skipped.append(f"{file} (columns match no fusionforge output)")
                continue
            units = _units(file, kind, output, sample, seed, unit_rows)
            found.units.extend(units)
            found.rows_total += pq.ParquetFile(file).metadata.num_rows
        if upstream and output.upstream and Path(output.upstream).is_dir():
            queue.append(Path(output.upstream))
    return found


def is_output(path: Path) -> bool:
    return any((path / name).exists() for name in (MANIFEST_FILE, LEDGER_FILE, REPORT, MARKER_DIR, PARTS_DIR))


def _output_files(folder: Path) -> tuple[Output, list[tuple[Path, str | None]]]:
    report, config = _read_json(folder / REPORT), _read_yaml(folder / CONFIG)
    step = (
        report.get("step")
        or config.get("step")
        or _ledger_step(folder)
        or ("rft" if "rft" in config else "shard" if "inputs" in config else folder.name)
    )
    upstream = config.get("input")
    seq_len = report.get("seq_len") or config.get("seq_len")
    vision_ratio = report.get("target_vision_ratio") or config.get("vision_ratio")
    complete = is_finished(folder)
    files: list[tuple[Path, str | None]] = []
    done = seen = None
    if not complete and (folder / PARTS_DIR).is_dir():
        marked = Markers(str(folder), PARTITION).done_numbers()
        parts = sorted((folder / PARTS_DIR).glob("*.parquet"))
        seen = len({_partition(p) for p in parts} | marked)
        done = len(marked)
        for part in parts:
            if _partition(part) in marked:
                files.append((part, MANIFEST if part.name.startswith("manifest-") else LEDGER))
        rejected = [p for p in sorted((folder / REJECTED_DIR).glob("part-*.parquet")) if _partition(p) in marked]
    else:
        for name, kind in ((MANIFEST_FILE, MANIFEST), (LEDGER_FILE, LEDGER)):
            if (folder / name).exists():
                files.append((folder / name, kind))
        rejected = sorted((folder / REJECTED_DIR).glob("*.parquet"))
    files += [(p, REJECTED) for p in rejected if not p.name.startswith(".")]
    files += [(p, None) for p in _other_parquet(folder)]
    output = Output(
        str(folder),
        str(step),
        complete,
        str(upstream) if upstream else None,
        int(seq_len) if seq_len else None,
        done,
        seen,
        float(vision_ratio) if isinstance(vision_ratio, (int, float)) else None,
    )
    return output, files


def _loose_files(path: Path) -> tuple[Output, list[tuple[Path, str | None]]]:
    """A Parquet file, or a folder of them, outside an output folder's layout (or a part of one)."""
    parent = next((p for p in (path, path.parent, path.parent.parent) if p.is_dir() and is_output(p)), None)
    context = _output_files(parent)[0] if parent else None
    step = context.step if context else path.stem
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.rglob("*.parquet") if not p.name.startswith("."))
        if not files:
            raise ConfigError(f"{path} holds no Parquet files and no fusionforge output")
    in_rejected = [(f, REJECTED if f.parent.name == REJECTED_DIR else None) for f in files]
    output = Output(
        str(path),
        step,
        True,
        context.upstream if context else None,
        context.seq_len if context else None,
        vision_ratio=context.vision_ratio if context else None,
    )
    return output, in_rejected


def _other_parquet(folder: Path) -> list[Path]:
    """Parquet files of an output besides manifest, ledger and rejected: clusters, pack plans."""
    out = []
    for path in sorted(folder.rglob("*.parquet")):
        relative = path.relative_to(folder)
        hidden = path.name.startswith(".") or relative.parts[0] in _SKIP_DIRS
        if hidden or str(relative) in (MANIFEST_FILE, LEDGER_FILE):
            continue
        out.append(path)
    return out


def _classify(path: Path) -> str | None:
    names = pq.read_schema(path).names
    if set(LEDGER_COLUMNS) <= set(names) or {"id", "status", "reason"} <= set(names):
        return LEDGER
    if is_clusters_schema(names):
        return CLUSTERS
    if is_plan_schema(names):
        return PLAN
    if is_sft_schema(names):
        return SFT
    if is_rft_prompts_schema(names):
        return RFT_PROMPTS
    if is_rft_samples_schema(names):
        return RFT_SAMPLES
    if {"id", "source", "modality"} <= set(names):
        return MANIFEST if "shard" in names else REJECTED
    return None


def _units(file: Path, kind: str, output: Output, sample: float | None, seed: int, unit_rows: int) -> list[Unit]:
    meta = pq.ParquetFile(file).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    if kind == CLUSTERS:  # cluster sizes need the whole file (read in bounded passes)
        return [Unit(str(file), kind, output.step, tuple(range(len(sizes))), sum(sizes), output.seq_len)]
    chosen, weight = list(range(len(sizes))), 1.0
    if sample is not None and sample < 1 and sizes and kind not in WHOLE_KINDS:
        chosen = _systematic(len(sizes), sample, random.Random(f"{seed}:{file}").random())
        picked = sum(sizes[i] for i in chosen)
        weight = sum(sizes) / picked if picked else 1.0
    units, current, rows = [], [], 0
    for index in chosen:
        current.append(index)
        rows += sizes[index]
        if rows >= unit_rows:
            units.append(Unit(str(file), kind, output.step, tuple(current), rows, output.seq_len, weight))
            current, rows = [], 0
    if current:
        units.append(Unit(str(file), kind, output.step, tuple(current), rows, output.seq_len, weight))
    return units


def _systematic(n: int, fraction: float, start: float) -> list[int]:
    """Every (1/fraction)-th row group from a seeded random start: at least one, spread over the file."""
    k = max(1, round(n * fraction))
    return sorted({min(n - 1, math.floor((i + start) * n / k)) for i in range(k)})


def _partition(path: Path) -> int | None:
    match = _PART.search(path.name)
    return int(match.group(1)) if match else None


def _ledger_step(folder: Path) -> str | None:
    """The ``step`` of the first ledger row (merged ledger, else the first part)."""
    for path in [folder / LEDGER_FILE, *sorted((folder / PARTS_DIR).glob("ledger-*.parquet"))]:
        if path.exists():
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1, columns=["step"]):
                return batch.column(0)[0].as_py()
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}
