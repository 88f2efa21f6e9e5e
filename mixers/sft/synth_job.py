"""``fusionforge sft synth-vision-proxy``: image QA files (and/or generated ones) -> verified trajectories.

QA rows are planned into small partitions so Ray spreads the sandbox sessions over the cluster's
CPUs; each row becomes a trajectory or a rejection with its reason. Outputs: ``trajectories.jsonl``
(OpenAI messages with a ``python`` tool, ready for ``sft build``), ``rejected.jsonl``,
``ledger.parquet``, ``report.json`` (with the vision check of what was written) and, when images
were generated, ``images/`` and ``qa.jsonl``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.mixers.sft.output import check_vision
from fusionforge.mixers.sft.parts import PARTS, ROW, RowSource, iter_part_batches, part_paths, plan, run_parts
from fusionforge.mixers.sft.sandbox import SandboxLimits
from fusionforge.mixers.sft.synth import synthesize
from fusionforge.mixers.sft.synth_images import TASKS, generate
from fusionforge.mixers.sft.vision import VisionScanner
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE_INT, POSITIVE, check_bounds, within
from fusionforge.pipelines.core.errors import RunError
from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.core.ledger import LEDGER_SCHEMA, ledger_rows, ledger_summary
from fusionforge.pipelines.core.lifecycle import SYNTH_IMAGES, Markers, finish_run, finished_report, prepare_output
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.sandbox import SANDBOX_MEMORY_MB, SANDBOX_PROCESSES, sandbox_mode, sandbox_summary
from fusionforge.pipelines.core.settings import RunSettings, flat_config
from fusionforge.pipelines.core.stage import Resources, Stage, StageSpec, add_drop_reasons, set_column
from fusionforge.pipelines.readers.plan import plan_fingerprint

SYNTH = "sft_synthesize_v1"
STEP = "sft_synth_vision_proxy"  # the ledger's and the report's step name
TRAJECTORY = S.stage_column(SYNTH, "trajectory")
PREDICTED = S.stage_column(SYNTH, "predicted")
TASK = S.stage_column(SYNTH, "task")
SANDBOX = S.stage_column(SYNTH, "sandbox")  # the isolation the row's sandbox session really got


@register
class SftSynthesize(Stage):
    """Runs each QA row's program in a sandbox; keeps the trajectory only when the code's answer is right."""

    name = SYNTH
    resources = Resources(num_cpus=1, batch_size=8)  # small batches: each row is a sandbox session

    def __init__(self, limits: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.limits = SandboxLimits(**(limits or {}))
        self.seed = seed

    def __call__(self, batch: pa.Table) -> pa.Table:
        trajectories, predicted, tasks, sandboxes, reasons = [], [], [], [], []
        columns = [batch.column(c).to_pylist() for c in (ROW, S.ERROR, S.INPUT_FILE, S.ID, S.SOURCE)]
        for raw, error, qa_file, record_id, source in zip(*columns):
            qa = json.loads(raw) if error is None else {}
            outcome = synthesize(qa, qa_file, record_id, source, self.limits, self.seed) if error is None else None
            trajectories.append(json.dumps(outcome.row, ensure_ascii=False) if outcome and outcome.row else None)
            predicted.append(outcome.predicted if outcome else None)
            sandboxes.append(outcome.sandbox if outcome else None)
            tasks.append(str(qa.get("task") or ("custom" if "program" in qa else "unknown")) if qa else None)
            reasons.append(f"{self.name}:{outcome.reason}" if outcome and outcome.reason else None)
        batch = set_column(batch, TRAJECTORY, pa.array(trajectories, pa.large_string()))
        batch = set_column(batch, PREDICTED, pa.array(predicted, pa.string()))
        batch = set_column(batch, TASK, pa.array(tasks, pa.string()))
        batch = set_column(batch, SANDBOX, pa.array(sandboxes, pa.string()))
        return add_drop_reasons(batch, pa.array(reasons, pa.string()))


@dataclass(frozen=True)
class SynthConfig:
    """What ``synth-vision-proxy`` reads, generates and how it runs each sandbox session."""

    inputs: tuple[str, ...]
    output: str
    generate: int = within(NON_NEGATIVE_INT, 0)
    tasks: tuple[str, ...] = TASKS
    image_size: int = 256
    timeout_s: float = within(POSITIVE, 10.0)
    memory_mb: int = within(SANDBOX_MEMORY_MB, 512)
    max_processes: int = within(SANDBOX_PROCESSES, 32)
    cpu_s: int = within(COUNT, 30)
    allow_unsandboxed: bool = False  # run the code without isolation where this machine cannot isolate
    # QA rows per unit of work (~12 rows): sandbox sessions spread over workers
    partition_kb: float = within(POSITIVE, 4.0)
    run: RunSettings = RunSettings()  # run.seed: the generated images and the sandbox sessions

    def __post_init__(self) -> None:
        nothing = "give image-QA files, or --generate N to draw N synthetic images with known answers"
        check_bounds(self, nothing if not self.inputs and not self.generate else None)
        SandboxLimits(**self.limits())  # bad limits fail before any work

    def limits(self) -> dict[str, Any]:
        return {
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
            "max_processes": self.max_processes,
            "cpu_s": self.cpu_s,
            "allow_unsandboxed": self.allow_unsandboxed,
        }


def run_synth(cfg: SynthConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Synthesise (or finish a killed run); return the report, also written to ``report.json``."""
    started = time.monotonic()
    sandbox_mode(cfg.allow_unsandboxed)  # a machine that cannot isolate refuses before any work, unless allowed
    out = Path(cfg.output)
    user_plan = plan(cfg.inputs, cfg.partition_kb / 1024) if cfg.inputs else []
    fingerprint = {
        "plan": plan_fingerprint(user_plan),
        "settings": {
            k: v
            for k, v in flat_config(cfg).items()
            if k not in ("resume", "executor", "ray_address", "num_cpus", "output")
        },
    }
    if prepare_output(out, fingerprint, cfg.run.resume, (PARTS,)):
        return finished_report(out)
    inputs = list(cfg.inputs)
    if cfg.generate > 0:
        generated = Markers(str(out), SYNTH_IMAGES)
        if generated.read() is None:
            generate(out, cfg.generate, cfg.run.seed, cfg.tasks, cfg.image_size)
            generated.mark({"images": cfg.generate})
        inputs.append(f"synthetic={out / 'qa.jsonl'}")
    partitions = plan(inputs, cfg.partition_kb / 1024)
    source = RowSource(partitions, cfg.run.strict)
    run, choice = cfg.run.choose(STEP, source.planned_bytes)
    run_parts(out, source, [_spec(cfg)], run, progress)
    by_task, sandboxes = _write_outputs(out, part_paths(out, partitions))
    found = check_vision(out, VisionScanner(), ("trajectories",))
    if found["trajectories"]:
        (out / "trajectories.jsonl").unlink()
        raise RunError(f"vision check failed: {found['trajectories']} vision parts in trajectories.jsonl")
    ledger = ledger_summary(out / "ledger.parquet")
    report = {
        "step": STEP,
        "inputs": ledger["inputs"],
        "kept": ledger["kept"],
        "dropped": ledger["dropped"],
        "failed": ledger["failed"],
        "reasons": ledger["reasons"],
        "by_task": by_task,
        "generated_images": cfg.generate,
        "sandbox": {**cfg.limits(), **sandbox_summary(sandboxes)},
        "vision_check": f"{found['trajectories']} vision parts in trajectories.jsonl",
        "outputs": {"trajectories": "trajectories.jsonl", "rejected": "rejected.jsonl", "ledger": "ledger.parquet"},
        "executor": choice.report(),
        "seconds": round(time.monotonic() - started, 3),
    }
    return finish_run(out, report, flat_config(cfg), (PARTS,))


def _spec(cfg: SynthConfig):
    return StageSpec(SftSynthesize, {"limits": cfg.limits(), "seed": cfg.run.seed})


def _write_outputs(out: Path, paths: list[Path]) -> tuple[dict[str, dict[str, int]], Counter]:
    """Write the outputs; return the counts per task and the sandbox sessions per sandbox mode."""
    by_task: dict[str, dict[str, int]] = {}
    sandboxes: Counter = Counter()
    columns = [
        S.ID,
        S.SOURCE,
        S.MODALITY,
        S.INPUT_FILE,
        S.INPUT_POSITION,
        S.DROP_REASON,
        S.ERROR,
        ROW,
        TRAJECTORY,
        PREDICTED,
        TASK,
        SANDBOX,
    ]
    with (
        atomic_path(out / "trajectories.jsonl") as kept_tmp,
        atomic_path(out / "rejected.jsonl") as rejected_tmp,
        atomic_path(out / "ledger.parquet") as ledger_tmp,
        open(kept_tmp, "w", encoding="utf-8") as kept,
        open(rejected_tmp, "w", encoding="utf-8") as rejected,
        pq.ParquetWriter(ledger_tmp, LEDGER_SCHEMA) as ledger,
    ):
        for batch in iter_part_batches(paths, columns, batch_size=1024):
            table = pa.Table.from_batches([batch])
            ledger.write_table(ledger_rows(table, STEP))
            for row in table.to_pylist():
                if row[SANDBOX] is not None:
                    sandboxes[row[SANDBOX]] += 1
                entry = by_task.setdefault(row[TASK] or "unreadable", {"inputs": 0, "kept": 0, "rejected": 0})
                entry["inputs"] += 1
                if row[TRAJECTORY] is not None and row[S.DROP_REASON] is None and row[S.ERROR] is None:
                    kept.write(row[TRAJECTORY] + "\n")
                    entry["kept"] += 1
                    continue
                entry["rejected"] += 1
                rejected.write(
                    json.dumps(
                        {
                            "id": row[S.ID],
                            "source": row[S.SOURCE],
                            "input_file": row[S.INPUT_FILE],
                            "input_position": row[S.INPUT_POSITION],
                            "reason": row[S.ERROR] or row[S.DROP_REASON],
                            "predicted": row[PREDICTED],
                            "qa": json.loads(row[ROW]) if row[ROW] else None,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
    return by_task, sandboxes
