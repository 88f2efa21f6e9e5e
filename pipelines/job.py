"""The partitioned job every shard-writing pipeline runs: resume checks, execution, merge, report.

``shard`` (raw inputs) and ``transform`` (an earlier output, e.g. for dedupe or filter) differ only in
their ``Source``, their stages and their settings; the rest (refusing to overwrite, checking that a
resumed run has the same plan, skipping partitions with markers, merging parts, writing the report,
``config.yaml`` and ``_SUCCESS``) lives here once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.config import dump_config
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import WORK_DIR, marker_path, read_marker, write_json_atomic
from fusionforge.pipelines.core.ledger import ledger_summary
from fusionforge.pipelines.core.runner import Executor, make_executor
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.writers.manifest import (
    LEDGER,
    MANIFEST,
    ids_used_earlier,
    merge_parts,
    remove_parts,
    unify_rejected,
)
from fusionforge.pipelines.writers.webdataset_writer import ShardLayout, write_partition

SUCCESS = "_SUCCESS"
REPORT = "report.json"


@dataclass(frozen=True)
class Job:
    """One run: where it writes, what it reads, what it applies and how it runs."""

    step: str
    layout: ShardLayout
    source: Source
    stages: Sequence[StageSpec]
    fingerprint: dict[str, Any]  # what a resumed run must share with the run it continues
    config: dict[str, Any]  # the resolved config, dumped to config.yaml
    executor: str = "ray"
    ray_address: str | None = None
    num_cpus: int | None = None
    resume: bool = False
    extra_report: dict[str, Any] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        return Path(self.layout.out_dir)


def run_job(
    job: Job,
    on_partition: Callable[[dict[str, Any]], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``job`` (or finish a killed run of it); return the report, also written to ``report.json``."""
    started = time.monotonic()
    out = job.out
    if prepare_output(out, job.fingerprint, job.resume):
        remove_parts(out)  # a run killed between _SUCCESS and this clean-up
        return json.loads((out / REPORT).read_text())
    partitions = job.source.partitions()
    todo = [p for p in partitions if read_marker(out, f"partition-{p:06d}") is None]
    if on_plan:
        on_plan(len(partitions), len(partitions) - len(todo))
    writer = partial(write_partition, job.layout)
    executor = make_executor(job.executor, job.ray_address, job.num_cpus) if todo else None
    if todo:
        executor.run(job.source, job.stages, writer, todo, on_partition)
    rerun = _rerun_repeated_ids(job, partitions, writer, executor)
    summaries = [read_marker(out, f"partition-{p:06d}") for p in partitions]
    merged = merge_parts(out, partitions)
    unify_rejected(out)
    report = _report(job, summaries, merged, time.monotonic() - started)
    report.update(skipped_partitions=len(partitions) - len(todo), rerun_partitions=rerun)
    dump_config(out / "config.yaml", {**job.config, "stages": [s.describe() for s in job.stages]})
    write_json_atomic(out / REPORT, report)
    (out / SUCCESS).write_text("ok\n")
    remove_parts(out)
    return report


def _rerun_repeated_ids(job: Job, partitions: list[int], writer: Callable, executor: Executor | None) -> int:
    """Rerun the partitions that use ids of earlier partitions, with those ids taken; return how many reruns.

    Partitions run independently, so a repeat across two of them shows only once both are written.
    The rerun gives the later records their position-derived ids (``Source.avoiding``), exactly what
    one partition holding both would have done. Its marker is removed first, so a run killed here
    resumes by writing the partition again and finding the same repeat. Taken ids accumulate over
    rounds, and an id once used by a partition stays used by it or an earlier one, so the loop ends:
    one round in practice, more only when a position-derived id equals another record's own id.
    """
    taken: dict[int, set[str]] = {}
    reruns = 0
    while repeats := ids_used_earlier(job.out, partitions):
        for partition, ids in repeats.items():
            taken.setdefault(partition, set()).update(ids)
        source = job.source.avoiding({p: frozenset(ids) for p, ids in taken.items()})
        for partition in repeats:
            marker_path(job.out, f"partition-{partition:06d}").unlink(missing_ok=True)
        executor = executor or make_executor(job.executor, job.ray_address, job.num_cpus)
        executor.run(source, job.stages, writer, sorted(repeats))
        reruns += len(repeats)
    return reruns


def prepare_output(out: Path, fingerprint: dict[str, Any], resume: bool) -> bool:
    """Check that ``out`` may be written (or resumed); True when it already holds the finished run."""
    plan_file = out / WORK_DIR / "plan.json"
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise ConfigError(f"{out} is not empty; pass --resume to continue that run, or choose a new -o")
        if not plan_file.exists():
            raise ConfigError(f"{out} holds no fusionforge run to resume (no {WORK_DIR}/plan.json)")
        if json.loads(plan_file.read_text()) != json.loads(json.dumps(fingerprint, default=str)):
            raise ConfigError(f"the inputs or settings differ from the run in {out}; use a new -o, or the same inputs")
        if (out / SUCCESS).exists():
            return True
        _remove_temporaries(out)
    write_json_atomic(plan_file, json.loads(json.dumps(fingerprint, default=str)))
    return False


def _remove_temporaries(out: Path) -> None:
    for tmp in out.rglob(".*.tmp-*"):
        if re.search(r"\.tmp-\d+$", tmp.name):
            tmp.unlink()


def _report(job: Job, summaries: list[dict[str, Any]], merged: dict[str, Any], seconds: float) -> dict[str, Any]:
    ledger = ledger_summary(job.out / LEDGER)
    return {
        "step": job.step,
        "inputs": ledger["inputs"],
        "derived": ledger["derived"],
        "kept": ledger["kept"],
        "dropped": ledger["dropped"],
        "failed": ledger["failed"],
        "reasons": ledger["reasons"],
        "reasons_by_source": ledger["reasons_by_source"],
        "by_source_modality": ledger["by_source_modality"],
        "shards": sum(len(s["shards"]) for s in summaries),
        "shard_bytes": sum(s["bytes"] for s in summaries),
        "manifest_rows": merged["manifest"],
        "repeated_ids": sum(s.get("repeated_ids", 0) for s in summaries),
        "partitions": len(summaries),
        "seconds": round(seconds, 3),
        "executor": job.executor,
        "outputs": {"manifest": MANIFEST, "ledger": LEDGER, "shards": "shards/", "rejected": "rejected/"},
        **job.extra_report,
    }
