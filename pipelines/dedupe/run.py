"""``fusionforge dedupe``: sketch every record, group and verify globally, then write the survivors.

1. Sketch (a partitioned job on the executor): per input shard, exact keys, MinHash signatures and
   perceptual hashes go to files under ``OUT/_work/dedupe`` (markers make this phase resumable).
2. Group and verify (Ray Data shuffle, or the same functions in-process): edges between duplicates.
3. Resolve (this process, memory bound by the edges): clusters, the kept copy of each, decisions per
   input shard; ``clusters.parquet`` is written next to the output.
4. Write (``run_transform``): each input shard's records, joined with their decisions, through
   ``dedupe_apply_v1``; dropped copies go to ``rejected/`` and the ledger names the kept copy.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.filters.dedup.apply import DedupeApply, empty_decisions
from fusionforge.filters.dedup.paragraphs import EMPTIED, REMOVED_COLUMN, DedupeParagraphs
from fusionforge.filters.dedup.sketch import DedupeSketch
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.executor_choice import ExecutorChoice
from fusionforge.pipelines.core.lifecycle import (
    DEDUPE_GLOBAL,
    DEDUPE_SKETCH,
    Markers,
    finished_report,
    prepare_output,
    run_pending,
)
from fusionforge.pipelines.core.progress import Progress, phase, quiet
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.dedupe.clusters import CLUSTERS, resolve, write_results
from fusionforge.pipelines.dedupe.config import DedupeConfig
from fusionforge.pipelines.dedupe.grouping import hamming_costs, shuffle_parts, verified_edges
from fusionforge.pipelines.dedupe.paragraphs import FREQUENT, count_paragraphs
from fusionforge.pipelines.dedupe.store import STORE_DIR, SketchReader, file_path, write_sketches
from fusionforge.pipelines.transform import ManifestSource, run_transform, transform_fingerprint
from fusionforge.pipelines.writers.manifest import MANIFEST
from fusionforge.pipelines.writers.webdataset_writer import REJECTED_DIR

STEP = "dedupe"


class DecisionSource(Source):
    """An earlier output's records, each joined with its dedupe decision (one small file per input shard)."""

    def __init__(self, base: ManifestSource, root: Path) -> None:
        self.base = base
        self.root = Path(root)

    def partitions(self) -> list[int]:
        return self.base.partitions()

    def planned_bytes(self) -> int:
        return self.base.planned_bytes()

    def read(self, partition: int) -> Iterator[pa.Table]:
        path = file_path(self.root, "decisions", partition, "parquet")
        decisions = pq.read_table(path) if path.exists() else None
        offset = 0
        for batch in self.base.read(partition):
            n = batch.num_rows
            columns = empty_decisions(n)
            if decisions is not None:
                rows = decisions.column("row").to_numpy()
                inside = np.flatnonzero((rows >= offset) & (rows < offset + n))
                index = np.full(n, -1, np.int64)
                index[rows[inside] - offset] = inside
                take = pa.array(index, mask=index < 0)
                columns = {name: decisions.column(name).take(take) for name in columns}
            for name, values in columns.items():
                batch = batch.append_column(name, values)
            offset += n
            yield batch


def run_hash_dedupe(cfg: DedupeConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Run (or finish) the hash dedupe (exact keys, MinHash, pHash); return the report, also written to
    ``report.json``.

    ``progress`` hears the phases (sketch, group, write) and the partitions of the sketch and write passes.
    """
    started = time.monotonic()
    columns = [S.ID, S.SOURCE, S.MODALITY, S.TEXT, S.MEDIA, S.ERROR] + score_columns(cfg)
    source = ManifestSource(cfg.input, columns=columns)
    run, choice = cfg.run.choose(STEP, source.planned_bytes)
    cfg = replace(cfg, run=run)
    out = Path(cfg.output)
    if prepare_output(out, transform_fingerprint(cfg.transform(), cfg.settings()), cfg.run.resume, (STORE_DIR,)):
        return finished_report(out)
    root = out / STORE_DIR
    partitions = source.partitions()
    starts = tuple(source.row_range(p)[0] for p in partitions)
    bands, rows = cfg.lsh()
    params = {
        **cfg.settings(),
        "bands": bands,
        "rows": rows,
        "score_column": cfg.score_column,
        "image_hamming": cfg.image_max_distance,
        **cfg.hamming_bands(),
        "keep_shingles": cfg.recheck_margin > 0,
        "store": str(root),
        "starts": list(starts),
    }
    global_done = Markers(str(out), DEDUPE_GLOBAL)
    summary = global_done.read()
    if summary is None:
        summary = _global_phase(cfg, source, partitions, starts, params, root, progress)
        global_done.mark(summary)
    return write_survivors(cfg, root, summary, started, progress, choice)


def write_survivors(
    cfg: DedupeConfig,
    root: Path,
    summary: dict[str, Any],
    started: float,
    progress: Progress,
    choice: ExecutorChoice,
) -> dict[str, Any]:
    """The write phase: each input shard's records joined with their decisions (under ``root``) through
    ``dedupe_apply_v1`` (and the paragraph pass when asked); ``summary`` becomes the report's ``dedupe``
    section, with the timings; ``choice`` is the executor the step chose."""
    out = Path(cfg.output)
    decided = DecisionSource(ManifestSource(cfg.input), root)
    stages = [StageSpec(DedupeApply)]
    if cfg.paragraphs:
        clock = time.monotonic()
        summary["paragraphs"] = count_paragraphs(
            out, root, decided, cfg.paragraph_min_docs, cfg.run.make_executor, progress
        )
        summary["seconds"]["paragraphs"] = round(time.monotonic() - clock, 3)
        stages.append(StageSpec(DedupeParagraphs, {"frequent_path": str(root / FREQUENT)}))
    phase(progress, "write")
    write_started = time.monotonic()

    def add_timings(report: dict[str, Any]) -> None:
        summary["seconds"]["write"] = round(time.monotonic() - write_started, 3)
        summary["seconds_total"] = round(time.monotonic() - started, 3)
        if cfg.paragraphs:
            summary["paragraphs"].update(paragraph_outcome(out))
        report["dedupe"] = summary

    return run_transform(
        cfg.transform(resume=True),
        STEP,
        stages,
        cfg.settings(),
        progress,
        source=decided,
        extra_report={"dedupe": summary},
        complete_report=add_timings,
        scratch=(STORE_DIR,),
        choice=choice,
    )


def paragraph_outcome(out: Path) -> dict[str, int]:
    """Paragraphs removed, documents that lost some, and documents left with nothing (dropped), from the output."""
    files = [out / MANIFEST] + sorted((out / REJECTED_DIR).glob("*.parquet"))
    removed = changed = 0
    for path in files:
        if path.exists() and REMOVED_COLUMN in pq.read_schema(path).names:
            values = pq.read_table(path, columns=[REMOVED_COLUMN]).column(REMOVED_COLUMN).to_numpy(zero_copy_only=False)
            values = np.nan_to_num(values.astype(np.float64))
            removed += int(values.sum())
            changed += int((values > 0).sum())
    emptied = 0
    ledger = out / "ledger.parquet"
    if ledger.exists():
        reasons = pq.read_table(ledger, columns=["reason"]).column("reason").to_pylist()
        emptied = sum(1 for r in reasons if r == EMPTIED)
    return {"paragraphs_removed": removed, "documents_changed": changed, "documents_emptied": emptied}


def score_columns(cfg: DedupeConfig) -> list[str]:
    """``[column]`` of ``--keep best:<column>`` (checked to be a numeric column of the input), else ``[]``."""
    name = cfg.score_column
    if name is None:
        return []
    manifest = Path(cfg.input) / MANIFEST
    if not manifest.exists():
        return []  # ManifestSource names the problem
    schema = pq.read_schema(manifest)
    numeric = [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
    if name not in schema.names or name not in numeric:
        raise ConfigError(
            f"--keep best:{name}: no numeric column {name!r} in {manifest}; numeric columns: "
            f"{', '.join(c for c in numeric if '__' in c) or 'none (run a scoring stage first)'}"
        )
    return [name]


def _global_phase(cfg, source, partitions, starts, params, root, progress: Progress) -> dict[str, Any]:
    out = Path(cfg.output)
    timings = {}
    clock = time.monotonic()
    phase(progress, "sketch")
    executor = cfg.run.make_executor()
    sketched = Markers(str(out), DEDUPE_SKETCH)
    writer = partial(write_sketches, str(root), starts, params)
    stages = [StageSpec(DedupeSketch, cfg.sketch_params())]
    run_pending(sketched, source, stages, writer, lambda: executor, progress)
    sketches = sketched.read_all(partitions)
    timings["sketch"] = round(time.monotonic() - clock, 3)
    clock = time.monotonic()
    phase(progress, "group")
    band_rows = sum(s["band_rows"] for s in sketches)
    parts = shuffle_parts(band_rows, cfg.rows_per_shuffle_partition)
    band_files = [str(file_path(root, "bands", p, "parquet")) for p in partitions]
    edges = verified_edges(executor.ray if cfg.run.executor == "ray" else None, band_files, parts, params)
    timings["group_verify"] = round(time.monotonic() - clock, 3)
    clock = time.monotonic()
    clusters, decisions, stats = resolve(edges, SketchReader(root, starts), partitions, cfg.keep, params)
    write_results(out, root, clusters, decisions)
    timings["resolve"] = round(time.monotonic() - clock, 3)
    items: dict[str, int] = {}
    for s in sketches:
        for space, count in s["items"].items():
            items[space] = items.get(space, 0) + count
    costs = hamming_costs(root)
    hamming = {
        space: {
            "hash": cfg.image_hash if space == "image" else "phash",
            "max_distance": params[f"{space}_hamming"],
            "bits_per_band": params[f"{space}_band_bits"],
            "bands": params[f"{space}_bands"],
            "fanout": cfg.hamming_fanout,
            **costs.get(space, {"comparisons": 0, "skipped_comparisons": 0, "capped_buckets": 0, "matches": 0}),
        }
        for space in ("image", "video")
    }
    return {
        "lsh": {"bands": params["bands"], "rows": params["rows"], "num_perm": cfg.num_perm},
        "hamming_lsh": hamming,
        "items": items,
        "failed_items": sum(s["failed_items"] for s in sketches),
        "band_rows": band_rows,
        "shuffle_partitions": parts,
        "edges": edges.num_rows,
        **stats,
        "clusters_file": CLUSTERS,
        "seconds": timings,
        "driver_peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This (driver) process's peak resident memory so far."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
