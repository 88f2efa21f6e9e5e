"""``fusionforge filter``: run the filter list over an earlier output and write the kept records.

Built on ``transform.run_transform``: one partition per input shard, the same sharding out, kept
records in new shards, dropped and failed ones in ``rejected/`` with every score column, a ledger row
per record. Stages kept by ``top_fraction`` first go through a score pass (``score_pass.py``) under
the same plan, so a killed run resumes either pass. ``report.json`` adds the filter list, drops per
reason per source, the thresholds a score pass chose, the language detector, and for every numeric
score column its count, total and quantiles over all records (kept and rejected), to re-tune from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.lifecycle import prepare_output
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.filter_config import FilterEntry, build_specs
from fusionforge.pipelines.job import run_job
from fusionforge.pipelines.score_pass import SCORES_DIR, ScoreJoinSource, run_score_pass
from fusionforge.pipelines.transform import ManifestSource, TransformConfig, transform_job
from fusionforge.pipelines.writers.manifest import MANIFEST
from fusionforge.pipelines.writers.webdataset_writer import REJECTED_DIR

STEP = "filter"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class QualityConfig:
    """The input and output (``transform``) and the ordered filter list."""

    transform: TransformConfig
    filters: tuple[FilterEntry, ...]


def run_quality(cfg: QualityConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Run the filters; return the report (also in ``report.json``)."""
    entries = list(cfg.filters)
    specs = build_specs(entries)
    settings = {"filters": [e.describe() for e in entries]}
    extra = {"filters": settings["filters"], "language_detector": _detector(entries)}
    names = [s.name for s in specs]

    def add_scores(report: dict[str, Any]) -> None:
        report["scores"] = score_summary(Path(cfg.transform.output), names)

    job = transform_job(cfg.transform, STEP, specs, settings, extra_report=extra, complete_report=add_scores)
    ranked = [s for s in specs if s.params.get("top_fraction") is not None]
    if ranked:
        if prepare_output(job.out, job.fingerprint, job.run.resume):
            return run_job(job)  # the finished run's report (its leftover parts removed)
        chosen = run_score_pass(job, specs)
        specs = [_decide_from_scores(s, chosen) for s in specs]
        source = ScoreJoinSource(job.source, job.out / SCORES_DIR)
        run = dataclasses.replace(job.run, resume=True)
        job = dataclasses.replace(
            job, stages=specs, source=source, run=run, extra_report={**extra, "thresholds": chosen}
        )
    return run_job(job, progress)


def _decide_from_scores(spec: StageSpec, chosen: dict[str, dict[str, Any]]) -> StageSpec:
    if spec.name not in chosen:
        return spec
    params = {**spec.params, "resolved_threshold": chosen[spec.name]["threshold"], "reuse_scores": True}
    return dataclasses.replace(spec, params=params)


def _detector(entries: list[FilterEntry]) -> str | None:
    for entry in entries:
        if entry.stage == "text_lang_id_v1":
            path = entry.params.get("model_path")
            if path:
                return f"fasttext:{Path(path).name}"
            from importlib.metadata import version

            return f"py3langid-{version('py3langid')}"
    return None


def score_summary(out: Path, stages: list[str], sample: int = 200_000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Count, mean and quantiles of every numeric score column over kept and rejected records.

    Streamed in batches: count and mean are exact, quantiles come from a uniform sample of at most
    ``sample`` values per column (exact below that), so memory does not grow with the corpus.
    """
    files = [out / MANIFEST] + sorted((out / REJECTED_DIR).glob("*.parquet"))
    prefixes = tuple(S.stage_column(name, "") for name in stages)
    rng = np.random.default_rng(seed)
    stats: dict[str, dict[str, Any]] = {}
    for path in files:
        parquet = pq.ParquetFile(path)
        columns = [
            f.name
            for f in parquet.schema_arrow
            if f.name.startswith(prefixes) and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
        ]
        for batch in parquet.iter_batches(columns=columns, batch_size=65536) if columns else []:
            for name in columns:
                values = batch.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
                entry = stats.setdefault(name, {"n": 0, "sum": 0.0, "sample": np.empty(0)})
                _add_sample(entry, values[np.isfinite(values)], sample, rng)
    result = {}
    for name, entry in sorted(stats.items()):
        if entry["n"]:
            sample = entry["sample"]
            result[name] = {
                "count": entry["n"],
                "total": round(entry["sum"], 6),
                "mean": round(entry["sum"] / entry["n"], 6),
                **{f"p{int(q * 100)}": round(float(np.quantile(sample, q)), 6) for q in QUANTILES},
            }
    return result


def _add_sample(entry: dict[str, Any], values: np.ndarray, limit: int, rng: np.random.Generator) -> None:
    """Keep a sample of at most ``limit`` values in which every value seen so far is equally likely."""
    entry["n"] += len(values)
    entry["sum"] += float(values.sum())
    sample = entry["sample"]
    if len(sample) + len(values) <= limit:
        entry["sample"] = np.concatenate([sample, values])
        return
    take_new = min(len(values), int(rng.binomial(limit, len(values) / entry["n"])))
    take_old = min(limit - take_new, len(sample))
    entry["sample"] = np.concatenate(
        [rng.choice(sample, take_old, replace=False), rng.choice(values, take_new, replace=False)]
    )


def default_transform(input_dir: str, output_dir: str, **kwargs: Any) -> TransformConfig:
    """A ``TransformConfig`` for filtering ``input_dir`` into ``output_dir``."""
    ManifestSource(input_dir)  # fails early, naming the fix, when the input is not an output folder
    return TransformConfig(input=input_dir, output=output_dir, **kwargs)
