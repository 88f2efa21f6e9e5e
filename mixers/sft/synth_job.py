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
from fusionforge.pipelines.core.errors import ConfigError, RunError
from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.core.ledger import LEDGER_SCHEMA, ledger_rows, ledger_summary
from fusionforge.pipelines.core.lifecycle import SYNTH_IMAGES, Markers, finish_run, finished_report, prepare_output
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.sandbox_network import network_summary
from fusionforge.pipelines.core.settings import RunSettings, flat_config
from fusionforge.pipelines.core.stage import Resources, Stage, StageSpec, add_drop_reasons, set_column
from fusionforge.pipelines.readers.plan import plan_fingerprint

SYNTH = "sft_synthesize_v1"
STEP = "sft_synth_vision_proxy"  # the ledger's and the report's step name
TRAJECTORY = S.stage_column(SYNTH, "trajectory")
PREDICTED = S.stage_column(SYNTH, "predicted")
TASK = S.stage_column(SYNTH, "task")
NETWORK = S.stage_column(SYNTH, "network")  # how the row's sandbox session was cut off the network


@register
class SftSynthesize(Stage):
    """Runs each QA row's program in a sandbox; keeps the trajectory only when the code's answer is right."""

    name = SYNTH
    resources = Resources(num_cpus=1, batch_size=8)  # small batches: each row is a sandbox session

    def __init__(self, limits: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.limits = SandboxLimits(**(limits or {}))
        self.seed = seed

    def __call__(self, batch: pa.Table) -> pa.Table:
        trajectories, predicted, tasks, networks, reasons = [], [], [], [], []
        columns = [batch.column(c).to_pylist() for c in (ROW, S.ERROR, S.INPUT_FILE, S.ID, S.SOURCE)]
        for raw, error, qa_file, record_id, source in zip(*columns):
            qa = json.loads(raw) if error is None else {}
            outcome = synthesize(qa, qa_file, record_id, source, self.limits, self.seed) if error is None else None
            trajectories.append(json.dumps(outcome.row, ensure_ascii=False) if outcome and outcome.row else None)
            predicted.append(outcome.predicted if outcome else None)
            networks.append(outcome.network if outcome else None)
            tasks.append(str(qa.get("task") or ("custom" if "program" in qa else "unknown")) if qa else None)
            reasons.append(f"{self.name}:{outcome.reason}" if outcome and outcome.reason else None)
        batch = set_column(batch, TRAJECTORY, pa.array(trajectories, pa.large_string()))
        batch = set_column(batch, PREDICTED, pa.array(predicted, pa.string()))
        batch = set_column(batch, TASK, pa.array(tasks, pa.string()))
        batch = set_column(batch, NETWORK, pa.array(networks, pa.string()))
        return add_drop_reasons(batch, pa.array(reasons, pa.string()))


@dataclass(frozen=True)
class SynthConfig:
    """What ``synth-vision-proxy`` reads, generates and how it runs each sandbox session."""

    inputs: tuple[str, ...]
    output: str
    generate: int = 0
    tasks: tuple[str, ...] = TASKS
    image_size: int = 256
    timeout_s: float = 10.0
    memory_mb: int = 512
    cpu_s: int = 30
    network: str = "auto"
    partition_kb: float = 4.0  # QA rows per unit of work (~12 rows): sandbox sessions spread over workers
    run: RunSettings = RunSettings()  # run.seed: the generated images and the sandbox sessions

    def __post_init__(self) -> None:
        if not self.inputs and self.generate <= 0:
            raise ConfigError("give image-QA files, or --generate N to draw N synthetic images with known answers")
        SandboxLimits(**self.limits())  # bad limits fail before any work

    def limits(self) -> dict[str, Any]:
        return {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "cpu_s": self.cpu_s, "network": self.network}


def run_synth(cfg: SynthConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Synthesise (or finish a killed run); return the report, also written to ``report.json``."""
    started = time.monotonic()
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
    run_parts(out, RowSource(partitions, cfg.run.strict), [_spec(cfg)], cfg.run, progress)
    by_task, networks = _write_outputs(out, part_paths(out, partitions))
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
        "sandbox": {**cfg.limits(), "network_requested": cfg.network, **network_summary(networks)},
        "vision_check": f"{found['trajectories']} vision parts in trajectories.jsonl",
        "outputs": {"trajectories": "trajectories.jsonl", "rejected": "rejected.jsonl", "ledger": "ledger.parquet"},
        "executor": cfg.run.executor,
        "seconds": round(time.monotonic() - started, 3),
    }
    return finish_run(out, report, flat_config(cfg), (PARTS,))


def _spec(cfg: SynthConfig):
    return StageSpec(SftSynthesize, {"limits": cfg.limits(), "seed": cfg.run.seed})


def _write_outputs(out: Path, paths: list[Path]) -> tuple[dict[str, dict[str, int]], Counter]:
    """Write the outputs; return the counts per task and the sandbox sessions per network mode."""
    by_task: dict[str, dict[str, int]] = {}
    networks: Counter = Counter()
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
        NETWORK,
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
                if row[NETWORK] is not None:
                    networks[row[NETWORK]] += 1
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
    return by_task, networks
