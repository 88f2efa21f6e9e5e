"""``fusionforge pack``: count -> mix -> draw windows -> pack (in parallel) -> plan, ledger, report.

1. Counting (Ray Data, one task or actor batch per input shard, resumable by markers): every record
   gets text and vision tokens and is cut into pieces (``pack_items``).
2. Mixture: per-source token targets from the counts (``mixture``).
3. Streams: per kind (vision / short text / long text) and source, the chosen pieces in a seeded
   order, one input shard in memory at a time; sources merged by their token shares (``streams``).
4. Windows: drawn in the driver, packed by workers, written in order (``planner``): ``plan.parquet``.
5. Ledger (every input record's fate), ``report.json``, ``config.yaml``, ``_SUCCESS``; with
   ``materialize``, WebDataset shards of packed samples (``materialize``); with ``energon``, their
   Megatron-Energon metadata (``energon``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.mixers.mixture import load_mixture, plan_mixture
from fusionforge.mixers.packing.counting import ITEMS_DIR, ItemsLayout, PackItems, count_totals, write_items
from fusionforge.mixers.packing.energon import check_energon, prepare_energon
from fusionforge.mixers.packing.layout import SEQ_LEN
from fusionforge.mixers.packing.ledger import write_ledger
from fusionforge.mixers.packing.materialize import Encoder, materialize
from fusionforge.mixers.packing.metrics import PackMetrics, tolerance_check
from fusionforge.mixers.packing.plan_table import PLAN_SCHEMA
from fusionforge.mixers.packing.planner import InlineRunner, PlanParams, RayRunner, run_windows
from fusionforge.mixers.packing.streams import build_drawer
from fusionforge.mixers.packing.surplus import SURPLUS_DIR, spill_surplus
from fusionforge.mixers.tokens.text import TextCounter
from fusionforge.pipelines.core.bounds import (
    COUNT,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE_FRACTION,
    check_bounds,
    within,
)
from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.core.lifecycle import (
    PACK_ITEMS,
    Markers,
    finish_run,
    finished_report,
    prepare_output,
    run_pending,
)
from fusionforge.pipelines.core.progress import Progress, phase, quiet
from fusionforge.pipelines.core.settings import RunSettings, flat_config
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.transform import ManifestSource

PLAN = "plan.parquet"


@dataclass(frozen=True)
class PackConfig:
    """Everything that decides a pack plan; dumped to ``config.yaml``."""

    input: str
    output: str
    seq_len: int = within(SEQ_LEN, 8192)
    # None: the corpus's own share, kept steady in every window
    vision_ratio: float | None = within(FRACTION, None)
    ratio_tolerance: float = within(NON_NEGATIVE, 0.01)
    vision_preset: str = "kimi-k25"
    preset_overrides: dict[str, Any] = field(default_factory=dict)
    tokenizer: str | None = None
    tiktoken_pattern: str | None = None
    mixture: str | None = None
    window: int = within(COUNT, 256)
    seq_vision_max: float | None = within(POSITIVE_FRACTION, None)
    video_group_tokens: int | None = within(COUNT, None)  # None: seq_len
    eos: bool = True
    lag: int = within(COUNT, 8)
    materialize: bool = False
    samples_per_shard: int = within(COUNT, 1000)
    energon: bool = False  # with materialize: packed/.nv-meta, written by megatron-energon's own preparation
    run: RunSettings = RunSettings()  # run.seed: the window draws, and record hashes without a mixture seed

    def __post_init__(self) -> None:
        needs_tokenizer = "--materialize writes token ids and needs a real tokenizer: pass --tokenizer PATH"
        needs_materialize = "--energon prepares the materialized shards for Megatron-Energon: add --materialize"
        check_bounds(
            self,
            needs_tokenizer if self.materialize and not self.tokenizer else None,
            needs_materialize if self.energon and not self.materialize else None,
        )

    @property
    def seq_vision_cap(self) -> int | None:
        return int(self.seq_vision_max * self.seq_len) if self.seq_vision_max is not None else None


def run_pack(cfg: PackConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Run (or resume) a pack; return the report, also written to ``report.json``; ``progress`` hears the phases."""
    encoder = Encoder(cfg) if cfg.materialize else None  # a tokenizer that cannot write the ids fails before any work
    if cfg.energon:
        check_energon()
    started = time.monotonic()
    out = Path(cfg.output)
    mixture = load_mixture(cfg.mixture) if cfg.mixture else None
    hash_seed = mixture.seed if mixture else cfg.run.seed
    source = ManifestSource(cfg.input)
    run, choice = cfg.run.choose("pack", source.planned_bytes)
    cfg = replace(cfg, run=run)
    not_settings = ("executor", "ray_address", "num_cpus", "resume", "strict", "output")
    settings = {k: v for k, v in flat_config(cfg).items() if k not in not_settings}
    mixture_text = Path(cfg.mixture).read_text() if cfg.mixture else None
    fingerprint = {"settings": settings, "mixture": mixture_text, "input": str(Path(cfg.input).resolve())}
    if prepare_output(out, fingerprint, cfg.run.resume, scratch=(SURPLUS_DIR,)):
        return finished_report(out)
    phase(progress, "counting tokens")
    partitions = source.partitions()
    spec = StageSpec(
        PackItems,
        {
            "seq_len": cfg.seq_len,
            "preset": cfg.vision_preset,
            "preset_overrides": dict(cfg.preset_overrides),
            "tokenizer": cfg.tokenizer,
            "pattern": cfg.tiktoken_pattern,
            "seq_vision_cap": cfg.seq_vision_cap,
            "video_group_tokens": cfg.video_group_tokens,
            "eos": cfg.eos,
            "hash_seed": hash_seed,
        },
    )
    executor = cfg.run.make_executor()
    counted = Markers(str(out), PACK_ITEMS)
    run_pending(counted, source, [spec], partial(write_items, ItemsLayout(str(out))), lambda: executor)
    totals = count_totals(counted.read(p) for p in partitions)

    phase(progress, "mixing")
    plan = plan_mixture(mixture, totals.source_tokens, totals.histograms, seed=hash_seed)

    phase(progress, "packing windows")
    drawer, natural = build_drawer(out / ITEMS_DIR, totals, plan, cfg, hash_seed)
    ratio = drawer.ratio
    metrics = PackMetrics(cfg.seq_len, ratio, cfg.window)
    params = PlanParams(cfg.seq_len, cfg.window, cfg.seq_vision_cap, cfg.run.seed, cfg.lag)
    runner = RayRunner(executor.ray) if cfg.run.executor == "ray" else InlineRunner()
    with atomic_path(out / PLAN) as tmp, pq.ParquetWriter(tmp, PLAN_SCHEMA) as writer:
        next_id = [0]

        def sink(rows: pa.Table) -> None:
            metrics.add_rows(rows)
            ids = pa.array(np.arange(next_id[0], next_id[0] + rows.num_rows, dtype=np.int64))
            next_id[0] += rows.num_rows
            if rows.num_rows:
                writer.write_table(rows.add_column(0, "sequence_id", ids).cast(PLAN_SCHEMA))

        surplus = run_windows(drawer, params, runner, sink)

    phase(progress, "writing the ledger")
    surplus_items = spill_surplus(out, surplus)
    ledger = write_ledger(out, partitions, plan)
    summary = metrics.summary()
    report = {
        "step": "pack",
        "input": cfg.input,
        "plan": PLAN,
        "inputs": ledger["inputs"],
        "kept": ledger["kept"],
        "dropped": ledger["dropped"],
        "failed": ledger["failed"],
        "reasons": ledger["reasons"],
        **summary,
        "vision_ratio_source": "given" if cfg.vision_ratio is not None else "corpus",
        "corpus_vision_ratio": natural,
        "within_tolerance": tolerance_check(summary, cfg.ratio_tolerance),
        "rejected_oversize": sum(v for k, v in totals.rejected.items() if "oversize" in k),
        "resized_media": totals.resized,
        "surplus_items": surplus_items,
        "mixture": plan.report(summary["tokens_by_source"]),
        "warnings": list(plan.warnings),
        "text_tokens_method": _method(cfg),
        "tokenizer_fingerprint": TextCounter(cfg.tokenizer, cfg.tiktoken_pattern).fingerprint,
        "vision_preset": cfg.vision_preset,
        "executor": choice.report(),
    }
    if encoder is not None:
        phase(progress, "materializing shards")
        report["materialized"] = materialize(out, source, cfg, encoder)
    if cfg.energon:
        phase(progress, "preparing the Megatron-Energon dataset")
        report["energon"] = prepare_energon(out / "packed", workers=cfg.run.num_cpus or 2)
    report["seconds"] = round(time.monotonic() - started, 3)
    return finish_run(out, report, {**flat_config(cfg), "step": "pack"}, scratch=(SURPLUS_DIR,))


def _method(cfg: PackConfig) -> str:
    if cfg.tokenizer is None:
        return "estimate:chars/4 (no --tokenizer given: text token counts are estimates)"
    return f"tokenizer:{cfg.tokenizer}"
