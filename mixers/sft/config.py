"""The settings of ``sft build``: what decides what it writes, checked before any work.

Its own module because both phases read it: the per-record one (``build.py``) and the pass over
the whole set (``finish.py``), which ``build.py`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fusionforge.mixers.sft import stages as ST
from fusionforge.mixers.sft.tool_schema import SCHEMA_DIALECTS
from fusionforge.mixers.sft.vision import DEFAULT_PLACEHOLDERS
from fusionforge.pipelines.core.bounds import (
    COUNT,
    FRACTION,
    NON_NEGATIVE_INT,
    POSITIVE,
    PROPER_FRACTION,
    check_bounds,
    within,
)
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import RunSettings, flat_config
from fusionforge.pipelines.core.stage import StageSpec


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides what ``sft build`` writes; dumped to ``config.yaml`` next to the output."""

    inputs: tuple[str, ...]
    output: str
    mixture: str | None = None
    decontaminate: tuple[str, ...] = ()
    ngram: int = within(COUNT, 13)
    min_eval_tokens: int = within(NON_NEGATIVE_INT, 8)
    tokenizer: str | None = None
    max_tokens: int | None = within(COUNT, None)
    val_fraction: float = within(PROPER_FRACTION, 0.01)
    strip_vision: bool = False
    vision_placeholders: tuple[str, ...] = DEFAULT_PLACEHOLDERS
    near_dup_threshold: float | None = within(FRACTION, 0.8)  # 0 or None: exact duplicates only
    partition_mb: float = within(POSITIVE, 64.0)
    schema_dialect: str = "lenient"  # "strict": tool schemas must already be JSON Schema
    run: RunSettings = RunSettings()  # run.seed: the train/val split and the mixture's draws

    def __post_init__(self) -> None:
        """Bad settings fail here, before any work, with the fix in the message."""
        if not self.inputs:
            raise ConfigError("give at least one chat file (JSONL or Parquet)")
        check_bounds(self)
        if self.max_tokens is not None and not self.tokenizer:
            raise ConfigError(
                "--max-tokens is a limit in the model's tokens: give --tokenizer PATH (tokenizer.json "
                "or a tokenizer folder) to count them; without one the count is a characters/4 "
                "estimate, which would keep conversations over the limit or drop ones within it"
            )
        if self.schema_dialect not in SCHEMA_DIALECTS:
            raise ConfigError(
                f"--schema-dialect must be one of {', '.join(SCHEMA_DIALECTS)}, got {self.schema_dialect!r}"
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
                    "schema_dialect": self.schema_dialect,
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
            "schema_dialect",
        )
        return {k: v for k, v in flat_config(self).items() if k in keep}
