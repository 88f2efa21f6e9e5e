"""``fusionforge sft build``: chat files -> a validated, deduplicated, decontaminated, mixed, split SFT set.

Per record (on Ray, or in-process): parse into the canonical form and apply the vision policy,
validate with the real tokenizer's count, look for eval n-grams. Then, over the whole set:
duplicate ids, exact and near-duplicate user turns, the train/val split by content hash, the
token-weighted mixture of the training split, and the outputs (``train``/``val`` as OpenAI-messages
JSONL and Parquet, ``rejected.jsonl``, ``decontamination.jsonl``, ``ledger.parquet``, ``report.json``),
finished by a vision check of what was written.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fusionforge.mixers.sft.config import BuildConfig
from fusionforge.mixers.sft.decontaminate import EvalIndex
from fusionforge.mixers.sft.finish import finish_build
from fusionforge.mixers.sft.mixture import check_sources, load_mixture
from fusionforge.mixers.sft.parts import PARTS, RowSource, plan, run_parts
from fusionforge.mixers.sft.tokens import load_tokenizer
from fusionforge.pipelines.core.config import dump_config
from fusionforge.pipelines.core.io import write_json_atomic
from fusionforge.pipelines.job import prepare_output
from fusionforge.pipelines.readers.plan import parse_input, plan_fingerprint

REPORT = "report.json"
SUCCESS = "_SUCCESS"


def run_build(
    cfg: BuildConfig,
    on_plan: Callable[[int, int], None] | None = None,
    on_partition: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Build the set (or finish a killed run of it); return the report, also written to ``report.json``."""
    started = time.monotonic()
    cfg.check()
    out = Path(cfg.output)
    sources = [parse_input(text, "text").source for text in cfg.inputs]
    mixture = load_mixture(cfg.mixture) if cfg.mixture else None
    if mixture is not None:
        check_sources(mixture, sources)
    token_method = load_tokenizer(cfg.tokenizer)[0]  # a bad path fails now, not inside a Ray actor
    index = EvalIndex(cfg.decontaminate, cfg.ngram, cfg.min_eval_tokens) if cfg.decontaminate else None
    partitions = plan(cfg.inputs, cfg.partition_mb)
    fingerprint = {"plan": plan_fingerprint(partitions), "settings": cfg.settings()}
    if prepare_output(out, fingerprint, cfg.resume):
        return json.loads((out / REPORT).read_text(encoding="utf-8"))
    run_parts(
        out,
        RowSource(partitions, cfg.strict),
        cfg.stages(),
        executor=cfg.executor,
        ray_address=cfg.ray_address,
        num_cpus=cfg.num_cpus,
        on_plan=on_plan,
        on_partition=on_partition,
    )
    report = finish_build(out, cfg, partitions, mixture)
    report["tokens"]["method"] = token_method
    report["decontamination"] = _decontamination(cfg, index, report.pop("_matches_by_set"))
    report.update(step="sft_build", executor=cfg.executor, seconds=round(time.monotonic() - started, 3))
    dump_config(out / "config.yaml", {**dataclasses.asdict(cfg), "stages": [s.describe() for s in cfg.stages()]})
    write_json_atomic(out / REPORT, report)
    (out / SUCCESS).write_text("ok\n")
    shutil.rmtree(out / PARTS, ignore_errors=True)
    return report


def _decontamination(cfg: BuildConfig, index: Any, matches: dict[str, int]) -> dict[str, Any] | None:
    if index is None:
        return None
    sets = {name: {**stats, "matched_conversations": matches.get(name, 0)} for name, stats in index.stats.items()}
    return {
        "ngram": cfg.ngram,
        "min_eval_tokens": index.min_tokens,
        "indexed_ngrams": index.size,
        "eval_sets": sets,
        "removed": sum(matches.values()),
        "matches_file": "decontamination.jsonl",
    }
