"""Post-training outputs: ``sft build``'s sets and ``rft run``'s results, folded into small sums and summarised.

- SFT (``train.parquet``, ``val.parquet``): per split and source, rows (a conversation the mixture
  repeats is one row per copy), conversations (first copies), tokens (``n_tokens`` of every row:
  what a trainer reads) and conversations with tool calls; the tokens of each conversation.
- RFT (``pass_rates.parquet``): prompts per task and bucket with their counted samples (``n``),
  passes and accepted samples, and the pass rates; (``samples.parquet``) samples per status and
  selection with their prompt and completion tokens.

The files are found by their columns, so renamed or moved copies are read too. Like every state
of the audit, two states of two parts add up to the state of the whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.mixers.audit.histogram import LogHistogram

SFT_COLUMNS = ("id", "source", "messages", "n_tokens")
RFT_PROMPT_COLUMNS = ("id", "task", "bucket", "pass_rate")
RFT_SAMPLE_COLUMNS = ("prompt_id", "status", "selection", "completion_tokens")
SFT_READ = ("source", "n_tokens", "n_tool_calls", "repeat")  # never the messages themselves
RFT_PROMPT_READ = ("task", "bucket", "n", "passed", "pass_rate", "accepted")
RFT_SAMPLE_READ = ("status", "selection", "prompt_tokens", "completion_tokens")


def is_sft_schema(names: list[str]) -> bool:
    return set(SFT_COLUMNS) <= set(names)


def is_rft_prompts_schema(names: list[str]) -> bool:
    return set(RFT_PROMPT_COLUMNS) <= set(names)


def is_rft_samples_schema(names: list[str]) -> bool:
    return set(RFT_SAMPLE_COLUMNS) <= set(names)


def _add(table: dict[tuple[str, str], list[int]], keys: list[str], columns: pa.Table, values: list[str]) -> None:
    """Sum ``values`` of ``columns`` per ``keys`` into ``table`` (key tuple -> one sum per value)."""
    sums = columns.group_by(keys).aggregate([(v, "sum") for v in values])
    for row in zip(*(sums.column(k).to_pylist() for k in keys), *(sums.column(f"{v}_sum").to_pylist() for v in values)):
        current = table.setdefault(tuple(row[: len(keys)]), [0] * len(values))
        for i, value in enumerate(row[len(keys) :]):
            current[i] += value or 0


def _ints(batch: pa.RecordBatch, name: str) -> pa.Array:
    if name not in batch.schema.names:
        return pa.array(np.zeros(batch.num_rows, np.int64))
    return pc.fill_null(batch.column(name), 0).cast(pa.int64())


def _ones(batch: pa.RecordBatch) -> pa.Array:
    return pa.array(np.ones(batch.num_rows, np.int64))


def _strings(batch: pa.RecordBatch, name: str, default: str) -> pa.Array:
    if name not in batch.schema.names:
        return pa.array([default] * batch.num_rows)
    return pc.fill_null(batch.column(name).cast(pa.string()), default)


@dataclass
class SftState:
    groups: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (split, source) -> SFT_MEASURES
    tokens: LogHistogram = field(default_factory=LogHistogram)  # n_tokens per conversation (first copies)

    def fold(self, batch: pa.RecordBatch, split: str) -> None:
        if batch.num_rows == 0:
            return
        first = pc.equal(_ints(batch, "repeat"), 0)
        with_tools = pc.and_(first, pc.greater(_ints(batch, "n_tool_calls"), 0))
        columns = pa.table(
            {
                "split": pa.array([split] * batch.num_rows),
                "source": _strings(batch, "source", "unknown"),
                "rows": _ones(batch),
                "conversations": first.cast(pa.int64()),
                "tokens": _ints(batch, "n_tokens"),
                "with_tool_calls": with_tools.cast(pa.int64()),
            }
        )
        _add(self.groups, ["split", "source"], columns, list(SFT_MEASURES))
        self.tokens.add(_ints(batch, "n_tokens").filter(first).to_numpy(zero_copy_only=False))

    def merge(self, other: SftState) -> SftState:
        _merge(self.groups, other.groups)
        self.tokens.merge(other.tokens)
        return self


@dataclass
class RftState:
    prompts: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (task, bucket) -> PROMPT_MEASURES
    pass_rate: LogHistogram = field(default_factory=LogHistogram)  # prompts with a rate (invalid ones have none)
    samples: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (status, selection) -> SAMPLE_MEASURES

    def fold_prompts(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        columns = pa.table(
            {
                "task": _strings(batch, "task", "unknown"),
                "bucket": _strings(batch, "bucket", "unknown"),
                "prompts": _ones(batch),
                "n": _ints(batch, "n"),
                "passed": _ints(batch, "passed"),
                "accepted": _ints(batch, "accepted"),
            }
        )
        _add(self.prompts, ["task", "bucket"], columns, list(PROMPT_MEASURES))
        rates = pc.cast(batch.column("pass_rate"), pa.float64()).to_numpy(zero_copy_only=False)
        self.pass_rate.add(rates[np.isfinite(rates)])

    def fold_samples(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        columns = pa.table(
            {
                "status": _strings(batch, "status", "unknown"),
                "selection": _strings(batch, "selection", ""),
                "samples": _ones(batch),
                "prompt_tokens": _ints(batch, "prompt_tokens"),
                "completion_tokens": _ints(batch, "completion_tokens"),
            }
        )
        _add(self.samples, ["status", "selection"], columns, list(SAMPLE_MEASURES))

    def merge(self, other: RftState) -> RftState:
        _merge(self.prompts, other.prompts)
        _merge(self.samples, other.samples)
        self.pass_rate.merge(other.pass_rate)
        return self


SFT_MEASURES = ("rows", "conversations", "tokens", "with_tool_calls")
PROMPT_MEASURES = ("prompts", "n", "passed", "accepted")
SAMPLE_MEASURES = ("samples", "prompt_tokens", "completion_tokens")


def _merge(mine: dict, theirs: dict) -> None:
    for key, row in theirs.items():
        current = mine.setdefault(key, [0] * len(row))
        for i, value in enumerate(row):
            current[i] += value


def sft_section(states: dict[str, SftState]) -> dict[str, Any] | None:
    """Splits and sources of the SFT sets of every step that wrote one (``states``: step -> state)."""
    steps = [s for s, state in states.items() if state.groups]
    if not steps:
        return None
    merged = SftState()
    for step in steps:
        merged.merge(states[step])
    splits: dict[str, list[int]] = {}
    for (split, _source), row in merged.groups.items():
        _merge(splits, {split: row})
    order = sorted(splits, key=lambda s: (s != "train", s != "val", s))
    by_source = []
    for split in order:
        total = splits[split][2]
        rows = sorted(
            ((source, row) for (sp, source), row in merged.groups.items() if sp == split),
            key=lambda item: (-item[1][2], item[0]),
        )
        by_source += [
            {"split": split, "source": source, **_sft_figures(row), "token_share": row[2] / total if total else None}
            for source, row in rows
        ]
    return {
        "steps": steps,
        "splits": [{"split": s, **_sft_figures(splits[s])} for s in order],
        "by_source": by_source,
        "tokens_per_conversation": merged.tokens.to_dict(),
    }


def _sft_figures(row: list[int]) -> dict[str, Any]:
    rows, conversations, tokens, with_tools = row
    return {
        "rows": rows,
        "conversations": conversations,
        "tokens": tokens,
        "tool_use_share": with_tools / conversations if conversations else None,
    }


def rft_section(states: dict[str, RftState]) -> dict[str, Any] | None:
    """Prompts, pass rates and samples of the RFT results of every step that wrote them."""
    steps = [s for s, state in states.items() if state.prompts or state.samples]
    if not steps:
        return None
    merged = RftState()
    for step in steps:
        merged.merge(states[step])
    tasks: dict[str, list[int]] = {}
    buckets: dict[str, list[int]] = {}
    for (task, bucket), row in merged.prompts.items():
        _merge(tasks, {task: row})
        _merge(buckets, {bucket: row[:1]})
    statuses: dict[str, list[int]] = {}
    for (status, _selection), row in merged.samples.items():
        _merge(statuses, {status: row})
    sample_totals = [sum(row[i] for row in merged.samples.values()) for i in range(len(SAMPLE_MEASURES))]
    return {
        "steps": steps,
        "prompts": sum(row[0] for row in tasks.values()),
        "mean_pass_rate": merged.pass_rate.mean,
        "buckets": [{"bucket": b, "prompts": row[0]} for b, row in sorted(buckets.items(), key=lambda kv: kv[0])],
        "by_task": [
            {
                "task": task,
                "prompts": prompts,
                "samples": n,
                "passed": passed,
                "pass_rate": passed / n if n else None,
                "accepted": accepted,
            }
            for task, (prompts, n, passed, accepted) in sorted(tasks.items())
        ],
        "pass_rate": merged.pass_rate.to_dict(),
        "samples": sample_totals[0],
        "by_status": [{"status": s, "samples": row[0]} for s, row in sorted(statuses.items(), key=lambda kv: kv[0])],
        "accepted": sum(row[0] for (_status, selection), row in merged.samples.items() if selection == "accepted"),
        "prompt_tokens": sample_totals[1],
        "completion_tokens": sample_totals[2],
    }
