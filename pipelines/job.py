"""The partitioned job every shard-writing pipeline runs: execution, repeated ids, merge, report.

``shard`` (raw inputs) and ``transform`` (an earlier output, e.g. for dedupe or filter) differ only in
their ``Source``, their stages and their settings; the rest (running the partitions without a
marker, rerunning the ones that repeat ids, merging parts, the report) lives here once, and the
output folder's life (refusing to overwrite, resume checks, ``config.yaml``, ``_SUCCESS``) in
``core/lifecycle.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, partial
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.executor_choice import ExecutorChoice
from fusionforge.pipelines.core.io import WORK_DIR
from fusionforge.pipelines.core.ledger import ledger_summary
from fusionforge.pipelines.core.lifecycle import (
    PARTITION,
    MarkedWriter,
    Markers,
    finish_run,
    finished_report,
    prepare_output,
    run_pending,
)
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.runner import Executor
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.writers.manifest import (
    LEDGER,
    MANIFEST,
    ids_used_earlier,
    merge_parts,
    unify_rejected,
)
from fusionforge.pipelines.writers.webdataset_writer import PARTS_DIR, ShardLayout, write_partition


@dataclass(frozen=True)
class Job:
    """One run: where it writes, what it reads, what it applies and how it runs."""

    step: str
    layout: ShardLayout
    source: Source
    stages: Sequence[StageSpec]
    fingerprint: dict[str, Any]  # what a resumed run must share with the run it continues
    config: dict[str, Any]  # the resolved config, dumped to config.yaml
    run: RunSettings = RunSettings()
    extra_report: dict[str, Any] = field(default_factory=dict)
    # adds what the step measures once the merged outputs exist, before the report is written
    complete_report: Callable[[dict[str, Any]], None] | None = None
    scratch: tuple[str, ...] = ()  # the step's own scratch, removed with the parts once the run is finished
    choice: ExecutorChoice | None = None  # how run.executor was chosen; None: not yet (``chosen``)

    @property
    def out(self) -> Path:
        return Path(self.layout.out_dir)

    def chosen(self) -> Job:
        """This job with its executor chosen (``auto`` weighs the source's planned bytes against the CPUs)."""
        if self.choice is not None:
            return self
        run, choice = self.run.choose(self.step, self.source.planned_bytes)
        return replace(self, run=run, choice=choice)


def run_job(job: Job, progress: Progress = quiet) -> dict[str, Any]:
    """Run ``job`` (or finish a killed run of it); return the report, also written to ``report.json``."""
    started = time.monotonic()
    job = job.chosen()
    out = job.out
    scratch = (PARTS_DIR, *job.scratch)
    if prepare_output(out, job.fingerprint, job.run.resume, scratch):
        return finished_report(out)
    partitions = job.source.partitions()
    job.source.prepare(out / WORK_DIR)
    markers = Markers(str(out), PARTITION)
    writer = partial(write_partition, job.layout)
    executor = cache(job.run.make_executor)  # made once, when there is work
    skipped = run_pending(markers, job.source, job.stages, writer, executor, progress)
    rerun = _rerun_repeated_ids(job, partitions, markers, writer, executor)
    summaries = markers.read_all(partitions)
    merged = merge_parts(out, partitions)
    unify_rejected(out)
    report = _report(job, summaries, merged, time.monotonic() - started)
    report.update(skipped_partitions=skipped, rerun_partitions=rerun)
    if job.complete_report:
        job.complete_report(report)
    config = {**job.config, "stages": [s.describe() for s in job.stages]}
    return finish_run(out, report, config, scratch)


def _rerun_repeated_ids(
    job: Job, partitions: list[int], markers: Markers, writer: Callable, executor: Callable[[], Executor]
) -> int:
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
            markers.clear(partition)
        executor().run(source, job.stages, MarkedWriter(markers, writer), sorted(repeats))
        reruns += len(repeats)
    return reruns


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
        "executor": job.choice.report(),
        "outputs": {"manifest": MANIFEST, "ledger": LEDGER, "shards": "shards/", "rejected": "rejected/"},
        **job.extra_report,
    }
