"""The funnel (records and tokens through each step, reason by reason) and the top drop reasons.

Records come from the ledgers (every input of a step has one row), tokens from the records the step
wrote (kept: manifest; removed: ``rejected/``). When a step's inputs differ from what the previous
step kept (a step audited without its predecessor, or run on a subset), the gap is its own row, so
the funnel always adds up.
"""

from __future__ import annotations

from typing import Any

from fusionforge.mixers.audit.state import AuditState

ALL = "all"
TOP_REASONS = 20
EXAMPLES_PER_REASON = 5


def funnels(state: AuditState, steps: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``{"all": rows, "source/modality": rows, ...}``; rows in step order."""
    groups = {ALL} | {f"{key[1]}/{key[2]}" for s in steps for key in state.step(s).ledger.counts}
    return {group: _funnel(state, steps, group) for group in sorted(groups, key=lambda g: (g != ALL, g))}


def _funnel(state: AuditState, steps: list[str], group: str) -> list[dict[str, Any]]:
    def in_group(source: str, modality: str) -> bool:
        return group == ALL or f"{source}/{modality}" == group

    rows: list[dict[str, Any]] = []
    remaining: int | None = None
    ledger_steps = [s for s in steps if state.step(s).ledger.counts]
    for step in ledger_steps:
        counts = state.step(step).ledger.counts
        inputs = round(sum(n for (st, so, mo, _, _), n in counts.items() if st == step and in_group(so, mo)))
        if remaining is None:
            rows.append(_row(step, "ingested" if step == "shard" else "input", None, 0, inputs))
        elif inputs > remaining:  # the step derived records (e.g. scene clips of a video): a negative removal
            rows.append(_row(step, "derived records", None, remaining - inputs, inputs))
        elif inputs < remaining:
            rows.append(_row(step, "not carried over", None, remaining - inputs, inputs))
        remaining = inputs
        removed_tokens = _removed_tokens(state, step, in_group)
        reasons: dict[tuple[str, str], int] = {}
        for (st, so, mo, status, reason), n in counts.items():
            if st == step and status != "kept" and in_group(so, mo):
                reasons[(status, reason)] = reasons.get((status, reason), 0) + n
        for (status, reason), n in sorted(((k, round(v)) for k, v in reasons.items()), key=_reason_order):
            remaining -= n
            row = _row(step, reason, status, n, remaining)
            row["removed_tokens"] = removed_tokens.get(reason)
            rows.append(row)
    if ledger_steps:
        last = ledger_steps[-1]
        rows.append(_row(last, "packed" if last == "pack" else "kept", None, 0, remaining))
    return rows


def _row(step: str, stage: str, status: str | None, removed: int, remaining: int) -> dict[str, Any]:
    return {
        "step": step,
        "stage": stage,
        "status": status,
        "removed": removed,
        "remaining": remaining,
        "removed_tokens": None,
    }


def _reason_order(item: tuple[tuple[str, str], int]) -> tuple:
    (status, reason), n = item
    kind = 0 if "exact" in reason else 1 if "near" in reason else 2
    return status != "failed", kind, -n, reason


def _removed_tokens(state: AuditState, step: str, in_group) -> dict[str, int]:
    """Tokens (text + vision) of the records ``rejected/`` holds for ``step``, per reason."""
    out: dict[str, int] = {}
    for (source, modality, _lang, _status, reason), row in state.step(step).rejected.groups.items():
        if in_group(source, modality):
            out[reason] = out.get(reason, 0) + row[3] + row[4]  # text_tokens + vision_tokens
    return {reason: round(n) for reason, n in out.items()}


def drop_reasons(state: AuditState, steps: list[str]) -> list[dict[str, Any]]:
    """The most frequent drop and failure reasons over all steps, with example ids from several sources."""
    rows = []
    for step in steps:
        ledger = state.step(step).ledger
        inputs = sum(n for key, n in ledger.counts.items() if key[0] == step)
        totals: dict[tuple[str, str], int] = {}
        for (st, _so, _mo, status, reason), n in ledger.counts.items():
            if st == step and status != "kept":
                totals[(status, reason)] = totals.get((status, reason), 0) + n
        for (status, reason), n in totals.items():
            rows.append(
                {
                    "step": step,
                    "status": status,
                    "reason": reason,
                    "records": round(n),
                    "share_of_step_inputs": n / inputs if inputs else None,
                    "examples": _examples(ledger.examples, step, reason),
                }
            )
    rows.sort(key=lambda r: (-r["records"], r["step"], r["reason"]))
    return rows[:TOP_REASONS]


def _examples(examples: dict[tuple[str, str, str], list[str]], step: str, reason: str) -> list[str]:
    """Round-robin over sources, so the examples show where a reason strikes."""
    per_source = [ids for (st, re, _source), ids in sorted(examples.items()) if st == step and re == reason]
    out: list[str] = []
    for depth in range(max((len(ids) for ids in per_source), default=0)):
        out += [ids[depth] for ids in per_source if depth < len(ids)]
    return out[:EXAMPLES_PER_REASON]
