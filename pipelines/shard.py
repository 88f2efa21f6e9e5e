"""``fusionforge shard``: raw inputs -> WebDataset shards + manifest + ledger + report.

plan (partitions of input files) -> read -> ingest stages (probe media, finalise) -> per-partition
shard writer -> merge manifest and ledger parts -> report. Each partition is a unit of resume: its
marker is written after its shards and parts, and ``--resume`` skips partitions that have one.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.config import dump_config
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
from fusionforge.pipelines.core.io import WORK_DIR, read_marker, write_json_atomic
from fusionforge.pipelines.core.ledger import ledger_summary
from fusionforge.pipelines.core.runner import Source, make_executor
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import ReaderOptions
from fusionforge.pipelines.readers.plan import Partition, parse_input, plan_fingerprint, plan_partitions
from fusionforge.pipelines.stages.finalize import FinalizeRecords
from fusionforge.pipelines.stages.probe_media import ProbeMedia
from fusionforge.pipelines.writers.manifest import LEDGER, MANIFEST, merge_parts, remove_parts
from fusionforge.pipelines.writers.webdataset_writer import ShardLayout, write_partition

SUCCESS = "_SUCCESS"


@dataclass(frozen=True)
class ShardConfig:
    """Everything that decides what ``shard`` writes; dumped to ``config.yaml`` next to the output."""

    inputs: tuple[str, ...]
    output: str
    format: str = "auto"
    shard_size_mb: float | None = 256.0
    shard_count: int | None = None
    partition_mb: float = 512.0
    shuffle: bool = False
    seed: int = 0
    strict: bool = False
    resume: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_media_mb: float = 2048.0
    video_check: str = "decode"
    timeout_s: float = 60.0
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    executor: str = "ray"
    ray_address: str | None = None
    num_cpus: int | None = None

    def stages(self) -> list[StageSpec]:
        probe = {"max_pixels": self.max_pixels, "max_media_mb": self.max_media_mb, "video_check": self.video_check,
                 "timeout_s": self.timeout_s, "strict": self.strict}
        return [StageSpec(ProbeMedia, probe), StageSpec(FinalizeRecords)]

    def output_settings(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues."""
        keep = ("format", "shard_size_mb", "shard_count", "partition_mb", "shuffle", "seed", "max_pixels",
                "max_media_mb", "video_check", "reader")
        return {k: v for k, v in dataclasses.asdict(self).items() if k in keep}


class IngestSource(Source):
    """Partitions of raw input files, read by the reader of each file's format."""

    def __init__(self, partitions: list[Partition], options: ReaderOptions, batch_rows: int = 1024) -> None:
        self._partitions = {p.index: p for p in partitions}
        self._options = options
        self._batch_rows = batch_rows

    def partitions(self) -> list[int]:
        return sorted(self._partitions)

    def read(self, partition: int) -> Iterator[pa.Table]:
        rows: list[dict[str, Any]] = []
        for file in self._partitions[partition].files:
            for row in read_file(file, self._options):
                rows.append(row)
                if len(rows) >= self._batch_rows:
                    yield pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA)
                    rows = []
        if rows:
            yield pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA)


def run_shard(cfg: ShardConfig, on_partition: Callable[[dict[str, Any]], None] | None = None,
              on_plan: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the shard job; return the report (also written to ``report.json``)."""
    started = time.monotonic()
    out = Path(cfg.output)
    specs = [parse_input(text, cfg.format) for text in cfg.inputs]
    partitions = plan_partitions(specs, cfg.partition_mb)
    fingerprint = {"plan": plan_fingerprint(partitions), "settings": cfg.output_settings()}
    if _prepare_output(out, fingerprint, resume=cfg.resume):
        remove_parts(out)  # a run killed between _SUCCESS and this clean-up
        return json.loads((out / "report.json").read_text())
    todo = [p.index for p in partitions if read_marker(out, f"partition-{p.index:06d}") is None]
    if on_plan:
        on_plan(len(partitions), len(partitions) - len(todo))
    layout = ShardLayout(str(out), "shard", cfg.shard_size_mb, cfg.shard_count, cfg.seed if cfg.shuffle else None)
    if todo:
        executor = make_executor(cfg.executor, cfg.ray_address, cfg.num_cpus)
        source = IngestSource(partitions, cfg.reader)
        executor.run(source, cfg.stages(), partial(write_partition, layout), todo, on_partition)
    summaries = [read_marker(out, f"partition-{p.index:06d}") for p in partitions]
    merged = merge_parts(out, [p.index for p in partitions])
    report = _report(cfg, summaries, merged, out, time.monotonic() - started)
    dump_config(out / "config.yaml", {**dataclasses.asdict(cfg), "stages": [s.describe() for s in cfg.stages()]})
    write_json_atomic(out / "report.json", report)
    (out / SUCCESS).write_text("ok\n")
    remove_parts(out)
    return report


def _prepare_output(out: Path, fingerprint: dict[str, Any], resume: bool) -> bool:
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
    write_json_atomic(plan_file, fingerprint)
    return False


def _remove_temporaries(out: Path) -> None:
    for tmp in out.rglob(".*.tmp-*"):
        if re.search(r"\.tmp-\d+$", tmp.name):
            tmp.unlink()


def _report(cfg: ShardConfig, summaries: list[dict[str, Any]], merged: dict[str, Any], out: Path,
            seconds: float) -> dict[str, Any]:
    ledger = ledger_summary(out / LEDGER)
    shards = [name for s in summaries for name in s["shards"]]
    return {
        "step": "shard",
        "inputs": ledger["inputs"],
        "kept": ledger["kept"],
        "dropped": ledger["dropped"],
        "failed": ledger["failed"],
        "reasons": ledger["reasons"],
        "by_source_modality": ledger["by_source_modality"],
        "shards": len(shards),
        "shard_bytes": sum(s["bytes"] for s in summaries),
        "manifest_rows": merged["manifest"],
        "duplicate_ids_across_partitions": merged["duplicate_ids_across_partitions"],
        "partitions": len(summaries),
        "seconds": round(seconds, 3),
        "executor": cfg.executor,
        "outputs": {"manifest": MANIFEST, "ledger": LEDGER, "shards": "shards/", "rejected": "rejected/"},
    }
