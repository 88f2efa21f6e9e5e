"""``fusionforge sft build``: chat files -> a validated, deduplicated, decontaminated, mixed, split SFT set.

Per record (on Ray, or in-process): parse into the canonical form and apply the vision policy,
validate with the real tokenizer's count, look for eval n-grams. Then, over the whole set:
duplicate ids, exact and near-duplicate user turns, the train/val split by content hash, the
token-weighted mixture of the training split, and the outputs (``train``/``val`` as OpenAI-messages
JSONL and Parquet, ``rejected.jsonl``, ``decontamination.jsonl``, ``ledger.parquet``, ``report.json``),
finished by a vision check of what was written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fusionforge.mixers.sft.config import BuildConfig
from fusionforge.mixers.sft.decontaminate import chat_eval_index
from fusionforge.mixers.sft.finish import finish_build
from fusionforge.mixers.sft.mixture import check_sources, load_mixture
from fusionforge.mixers.sft.parts import PARTS, RowSource, plan, run_parts
from fusionforge.mixers.sft.tokens import load_tokenizer
from fusionforge.pipelines.core.lifecycle import finish_run, finished_report, prepare_output
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.settings import flat_config
from fusionforge.pipelines.readers.plan import parse_input, plan_fingerprint


def run_build(cfg: BuildConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Build the set (or finish a killed run of it); return the report, also written to ``report.json``."""
    started = time.monotonic()
    out = Path(cfg.output)
    sources = [parse_input(text, "text").source for text in cfg.inputs]
    mixture = load_mixture(cfg.mixture) if cfg.mixture else None
    if mixture is not None:
        check_sources(mixture, sources)
    token_method = load_tokenizer(cfg.tokenizer)[0]  # a bad path fails now, not inside a Ray actor
    index = chat_eval_index(cfg.decontaminate, cfg.ngram, cfg.min_eval_tokens) if cfg.decontaminate else None
    partitions = plan(cfg.inputs, cfg.partition_mb)
    fingerprint = {"plan": plan_fingerprint(partitions), "settings": cfg.settings()}
    if prepare_output(out, fingerprint, cfg.run.resume, (PARTS,)):
        return finished_report(out)
    run_parts(out, RowSource(partitions, cfg.run.strict), cfg.stages(), cfg.run, progress)
    report = finish_build(out, cfg, partitions, mixture)
    report["tokens"]["method"] = token_method
    report["decontamination"] = _decontamination(cfg, index, report.pop("_matches_by_set"))
    report.update(step="sft_build", executor=cfg.run.executor, seconds=round(time.monotonic() - started, 3))
    config = {**flat_config(cfg), "stages": [s.describe() for s in cfg.stages()]}
    return finish_run(out, report, config, (PARTS,))


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
