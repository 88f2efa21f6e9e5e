"""The life of an output folder, the same for every step: prepare it, mark units of work done, finish it.

Every step (shard, dedupe, filter, pack, sft build, sft synth-vision-proxy, rft run) writes into
``-o`` through these functions, so the rules hold in one place:

- ``prepare_output``: a non-empty folder is refused unless ``--resume`` continues the same plan
  (the fingerprint kept in ``_work/plan.json``); the folder is locked for this run
  (``output_lock``: a second writer is refused); temporaries a killed run left are removed; a
  folder with ``_SUCCESS`` holds the finished run.
- ``Markers``: work is split into numbered units (the partitions of a pass, the shards of a
  materialization) or single steps; a unit is done when its completion marker exists, written
  after the unit's files (``MarkedWriter``), and ``--resume`` trusts markers and nothing else.
  ``run_pending`` runs the partitions that have none.
- ``finish_run``: ``config.yaml``, ``report.json`` and, last, ``_SUCCESS``; then the scratch the
  finished outputs no longer need is removed and the lock released.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core import output_lock
from fusionforge.pipelines.core.config import dump_config
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import WORK_DIR, write_json_atomic
from fusionforge.pipelines.core.progress import Progress, plan, quiet
from fusionforge.pipelines.core.runner import Executor, PartitionWriter
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.core.stage import StageSpec

SUCCESS = "_SUCCESS"
REPORT = "report.json"
CONFIG = "config.yaml"
PLAN_FILE = f"{WORK_DIR}/plan.json"  # the fingerprint of the run that writes the folder
MARKER_DIR = "_markers"

# Kinds of unit. A marker is named by its kind and the unit's number (``partition-000003``), or by
# its kind alone for a step done once per run.
PARTITION = "partition"  # a partition of a step's per-record pass (shard writing, the SFT parts)
PACK_ITEMS = "items"  # pack: one input shard counted and cut into pieces
PACKED_SHARD = "packed"  # pack --materialize: one shard of packed samples
DEDUPE_SKETCH = "dedupe-sketch"  # dedupe: one input shard sketched
DEDUPE_EMBED = "dedupe-embed"  # dedupe --semantic: one input shard embedded
DEDUPE_GLOBAL = "dedupe-global"  # dedupe: grouping, verification and resolution, once per run
DEDUPE_PARAGRAPHS = "dedupe-paragraphs"  # dedupe --paragraphs: one input shard's keys; alone: the count, once
SYNTH_IMAGES = "generated"  # synth-vision-proxy: the generated images and their QA file, once per run

_TEMPORARY = re.compile(r"\.tmp-\d+$")


def prepare_output(
    out: str | os.PathLike, fingerprint: dict[str, Any], resume: bool, scratch: Sequence[str] = ()
) -> bool:
    """Check that ``out`` may be written (or resumed); True when it already holds the finished run.

    ``fingerprint`` is what a resumed run must share with the run it continues (inputs, plan,
    settings). A finished run found here has its ``scratch`` (paths under ``out``) removed: a kill
    between ``_SUCCESS`` and the clean-up leaves them behind.
    """
    out = Path(out)
    plan_file = out / PLAN_FILE
    expected = json.loads(json.dumps(fingerprint, default=str))
    started = out.exists() and any(out.iterdir())
    if started and not resume:
        raise ConfigError(f"{out} is not empty; pass --resume to continue that run, or choose a new -o")
    if started and not plan_file.exists():
        raise ConfigError(f"{out} holds no fusionforge run to resume (no {PLAN_FILE})")
    if started and json.loads(plan_file.read_text()) != expected:
        raise ConfigError(f"the inputs or settings differ from the run in {out}; use a new -o, or the same inputs")
    output_lock.acquire(out)  # before anything is removed: a run still writing here keeps its temporaries
    if started:
        if is_finished(out):
            remove_scratch(out, scratch)
            output_lock.release(out)
            return True
        _remove_temporaries(out)
    write_json_atomic(plan_file, expected)
    return False


def is_finished(out: str | os.PathLike) -> bool:
    """True when ``out`` holds a finished run."""
    return (Path(out) / SUCCESS).exists()


def finished_report(out: str | os.PathLike) -> dict[str, Any]:
    """The report of the finished run in ``out``."""
    return json.loads((Path(out) / REPORT).read_text(encoding="utf-8"))


def reopen(out: str | os.PathLike) -> None:
    """Make a finished run unfinished again, for a step that rebuilds every output on resume (rft)."""
    output_lock.acquire(out)  # ``prepare_output`` gave it up on finding the run finished
    (Path(out) / SUCCESS).unlink(missing_ok=True)


def finish_run(
    out: str | os.PathLike, report: dict[str, Any], config: Any, scratch: Sequence[str] = ()
) -> dict[str, Any]:
    """Write ``config.yaml`` (the resolved settings), ``report.json`` and ``_SUCCESS``; remove ``scratch``.

    ``_SUCCESS`` comes last, so a folder that has it holds every output; ``scratch`` (paths under
    ``out``: parts, sketches) goes only after it, since an unfinished run resumes from it.
    """
    out = Path(out)
    dump_config(out / CONFIG, config)
    write_json_atomic(out / REPORT, report)
    (out / SUCCESS).write_text("ok\n")
    remove_scratch(out, scratch)
    output_lock.release(out)
    return report


def remove_scratch(out: str | os.PathLike, scratch: Iterable[str]) -> None:
    for path in scratch:
        shutil.rmtree(Path(out) / path, ignore_errors=True)


def _remove_temporaries(out: Path) -> None:
    for tmp in out.rglob(".*.tmp-*"):
        if _TEMPORARY.search(tmp.name):
            tmp.unlink()


def marker_name(kind: str, number: int | None = None) -> str:
    """``partition-000003`` for unit 3 of kind ``partition``; ``kind`` itself for a once-per-run step."""
    return kind if number is None else f"{kind}-{number:06d}"


@dataclass(frozen=True)
class Markers:
    """The completion markers of one kind of unit in one output folder (picklable: writers run on Ray)."""

    out_dir: str
    kind: str

    def path(self, number: int | None = None) -> Path:
        return Path(self.out_dir) / MARKER_DIR / f"{marker_name(self.kind, number)}.done.json"

    def mark(self, data: dict[str, Any], number: int | None = None) -> None:
        """Mark a unit done; ``data`` is what a resumed run needs to know about it."""
        write_json_atomic(self.path(number), data)

    def read(self, number: int | None = None) -> dict[str, Any] | None:
        """The marker's data when the unit is done, else None."""
        path = self.path(number)
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def clear(self, number: int | None = None) -> None:
        """Forget that a unit was done (it runs again)."""
        self.path(number).unlink(missing_ok=True)

    def pending(self, numbers: Iterable[int]) -> list[int]:
        """The units of ``numbers`` that have no marker, in order."""
        return [n for n in numbers if not self.path(n).exists()]

    def read_all(self, numbers: Iterable[int]) -> list[dict[str, Any] | None]:
        """Each unit's marker data (None where it has none), in the order of ``numbers``."""
        return [self.read(n) for n in numbers]

    def done_numbers(self) -> set[int]:
        """Every unit number that has a marker."""
        prefix, suffix = f"{self.kind}-", ".done.json"
        names = (p.name for p in (Path(self.out_dir) / MARKER_DIR).glob(f"{prefix}*{suffix}"))
        return {int(n[len(prefix) : -len(suffix)]) for n in names if n[len(prefix) : -len(suffix)].isdigit()}


@dataclass(frozen=True)
class MarkedWriter:
    """A partition writer that marks the partition done, with the writer's summary, once its files are written."""

    markers: Markers
    write: PartitionWriter

    def __call__(self, partition: int, table: Any) -> dict[str, Any]:
        summary = self.write(partition, table)
        self.markers.mark(summary, partition)
        return summary


def run_pending(
    markers: Markers,
    source: Source,
    stages: Sequence[StageSpec],
    write: PartitionWriter,
    executor: Callable[[], Executor],
    progress: Progress = quiet,
) -> int:
    """Run ``stages`` over the partitions of ``source`` that have no marker; return how many already had one.

    ``write`` stores one partition's files and returns its summary, which becomes the partition's
    marker. ``executor`` is called only when there is work. ``progress`` hears the plan (partitions
    in all and already done) and each partition's summary.
    """
    partitions = source.partitions()
    todo = markers.pending(partitions)
    plan(progress, len(partitions), len(partitions) - len(todo))
    if todo:
        executor().run(source, list(stages), MarkedWriter(markers, write), todo, progress)
    return len(partitions) - len(todo)
