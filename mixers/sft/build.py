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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionforge.mixers.sft import stages as ST
from fusionforge.mixers.sft.finish import finish_build
from fusionforge.mixers.sft.mixture import check_sources, load_mixture
from fusionforge.mixers.sft.parts import PARTS, RowSource, plan, run_parts
from fusionforge.mixers.sft.vision import DEFAULT_PLACEHOLDERS
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.lifecycle import finish_run, finished_report, prepare_output
from fusionforge.pipelines.core.progress import Progress, quiet
from fusionforge.pipelines.core.settings import RunSettings, flat_config
from fusionforge.pipelines.core.stage import StageSpec
from fusionforge.pipelines.readers.plan import parse_input, plan_fingerprint


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides what ``sft build`` writes; dumped to ``config.yaml`` next to the output."""

    inputs: tuple[str, ...]
    output: str
    mixture: str | None = None
    decontaminate: tuple[str, ...] = ()
    ngram: int = 13
    min_eval_tokens: int = 8
    tokenizer: str | None = None
    max_tokens: int | None = None
    val_fraction: float = 0.01
    strip_vision: bool = False
    vision_placeholders: tuple[str, ...] = DEFAULT_PLACEHOLDERS
    near_dup_threshold: float | None = 0.8
    partition_mb: float = 64.0
    run: RunSettings = RunSettings()  # run.seed: the train/val split and the mixture's draws

    def __post_init__(self) -> None:
        """Bad settings fail here, before any work, with the fix in the message."""
        if not self.inputs:
            raise ConfigError("give at least one chat file (JSONL or Parquet)")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"--max-tokens must be a positive number of tokens, got {self.max_tokens}")
        if self.max_tokens is not None and not self.tokenizer:
            raise ConfigError(
                "--max-tokens is a limit in the model's tokens: give --tokenizer PATH (tokenizer.json "
                "or a tokenizer folder) to count them; without one the count is a characters/4 "
                "estimate, which would keep conversations over the limit or drop ones within it"
            )
        if self.near_dup_threshold is not None and not 0.0 <= self.near_dup_threshold <= 1.0:
            raise ConfigError(
                f"--near-dup-threshold must be in [0, 1] (0 turns near-dup removal off), got {self.near_dup_threshold}"
            )

    def stages(self) -> list[StageSpec]:
        return [
            StageSpec(
                ST.SftParse,
                {
                    "strip_vision": self.strip_vision,
                    "placeholders": self.vision_placeholders,
                    "strict": self.run.strict,
                },
            ),
            StageSpec(
                ST.SftChecks,
                {
                    "tokenizer": self.tokenizer,
                    "max_tokens": self.max_tokens,
                    "evals": self.decontaminate,
                    "ngram": self.ngram,
                    "min_tokens": self.min_eval_tokens,
                },
            ),
        ]

    def settings(self) -> dict[str, Any]:
        """What a resumed run must share with the run it continues (the per-record settings)."""
        keep = (
            "decontaminate",
            "ngram",
            "min_eval_tokens",
            "tokenizer",
            "max_tokens",
            "strip_vision",
            "vision_placeholders",
        )
        return {k: v for k, v in flat_config(self).items() if k in keep}


def run_build(cfg: BuildConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Build the set (or finish a killed run of it); return the report, also written to ``report.json``."""
    from fusionforge.mixers.sft.decontaminate import EvalIndex
    from fusionforge.mixers.sft.tokens import load_tokenizer

    started = time.monotonic()
    out = Path(cfg.output)
    sources = [parse_input(text, "text").source for text in cfg.inputs]
    mixture = load_mixture(cfg.mixture) if cfg.mixture else None
    if mixture is not None:
        check_sources(mixture, sources)
    token_method = load_tokenizer(cfg.tokenizer)[0]  # a bad path fails now, not inside a Ray actor
    index = EvalIndex(cfg.decontaminate, cfg.ngram, cfg.min_eval_tokens) if cfg.decontaminate else None
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
