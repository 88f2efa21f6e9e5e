"""From the merged state to the report: every figure of the audit as plain JSON-able data.

The realised mixture is read where the data ends: the pack plan when there is one (tokens per source
as packed), else the kept records of the last step in the chain. Steps are ordered by the chain
their outputs record (``config.yaml``'s ``input``), then by the usual order shard -> dedupe ->
filter -> pack.
"""

from __future__ import annotations

from typing import Any

from fusionforge.mixers.audit.discover import Discovery, Output
from fusionforge.mixers.audit.domains import domains_section
from fusionforge.mixers.audit.funnel import drop_reasons, funnels
from fusionforge.mixers.audit.histogram import round_significant
from fusionforge.mixers.audit.posttraining import rft_section, sft_section
from fusionforge.mixers.audit.records import GROUP_KEYS, MEASURES, RecordsState, preset_measure
from fusionforge.mixers.audit.sections import duplicates, packing_figures
from fusionforge.mixers.audit.state import AuditState
from fusionforge.mixers.audit.target import Target, deviations
from fusionforge.mixers.audit.tokens import ESTIMATE_RULE

SCHEMA_ID = "fusionforge.audit/3"
CANONICAL_STEPS = ("shard", "dedupe", "filter", "quality", "pack")


def build_report(
    discovery: Discovery,
    state: AuditState,
    target: Target | None = None,
    sample: float | None = None,
    seed: int = 0,
    presets: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The audit report (see ``fusionforge.mixers.audit.schema`` for its layout)."""
    steps = order_steps(discovery.outputs, state)
    records_steps = [s for s in steps if state.step(s).kept.groups]
    final = records_steps[-1] if records_steps else None
    kept = state.step(final).kept if final else RecordsState()
    plan_steps = [s for s in steps if state.step(s).plan.sequences]
    packing = packing_figures(state, plan_steps, band_target(discovery.outputs, plan_steps, target))
    by_source = _by_source(kept)
    realised_shares = {row["source"]: row["token_share"] for row in by_source}
    realised_vision, vision_basis = _ratio(kept.totals()), f"records of step {final}" if final else None
    packed = {row["source"]: row["token_share"] for row in packing["tokens_by_source"]} if packing else {}
    if packing:
        realised_vision, vision_basis = packing["vision_ratio"], "pack plan"
        if packed:
            realised_shares = packed
    goals = target.shares({row["source"]: row["tokens"] for row in by_source}) if target else {}
    checks = deviations(target, goals, realised_shares, realised_vision) if target else []
    known = {row["source"] for row in by_source}
    by_source += [_empty_source(s) for s in sorted((set(packed) | set(goals)) - known)]
    for row in by_source:
        row["packed_share"] = packed.get(row["source"]) if packed else None
        goal = goals.get(row["source"])
        row["target_share"] = goal
        row["deviation"] = None if goal is None else realised_shares.get(row["source"], 0.0) - goal
        row["ok"] = None if goal is None else abs(row["deviation"]) <= target.tolerance + 1e-12
    report = {
        "schema": SCHEMA_ID,
        "exact": sample is None or sample >= 1,
        "sample": None
        if sample is None or sample >= 1
        else {
            "fraction": sample,
            "seed": seed,
            "rows_read": state.rows_read,
            "rows_total": discovery.rows_total,
            "note": "figures are estimates scaled from whole row groups sampled in every file; "
            "duplicate clusters, SFT sets and RFT results are always read in full",
        },
        "inputs": [_input(o) for o in discovery.outputs],
        "skipped": list(discovery.skipped),
        "rows_read": state.rows_read,
        "steps": steps,
        "final_step": final,
        "totals": _totals(kept.totals()),
        "token_basis": {
            "text_estimated_records": kept.totals()["text_tokens_estimated"],
            "vision_estimated_records": kept.totals()["vision_tokens_estimated"],
            "records": kept.totals()["records"],
            "estimate_rule": dict(ESTIMATE_RULE),
            "vision_preset": presets[0] if presets else None,
        },
        "vision_by_preset": _vision_by_preset(kept, presets),
        "mixture": _mixture(kept),
        "by_source": by_source,
        "mixture_by_step": _mixture_by_step(state, records_steps, plan_steps, packing),
        "vision_ratio": {
            "realised": realised_vision,
            "basis": vision_basis,
            "target": target.vision_ratio if target else None,
            "deviation": next((c["deviation"] for c in checks if c["figure"] == "vision_ratio"), None),
            "ok": next((c["ok"] for c in checks if c["figure"] == "vision_ratio"), None),
        },
        "funnel": funnels(state, steps),
        "drop_reasons": drop_reasons(state, steps),
        "duplicates": duplicates(state, steps),
        "domains": domains_section({s: state.step(s).kept.domains for s in records_steps}),
        "distributions": {
            s: _distributions(state.step(s).kept, state.step(s).rejected)
            for s in records_steps + [s for s in steps if s not in records_steps and state.step(s).rejected.groups]
        },
        "packing": packing,
        "sft": sft_section({s: state.step(s).sft for s in steps}),
        "rft": rft_section({s: state.step(s).rft for s in steps}),
        "target": None
        if target is None
        else {
            "path": target.path,
            "tolerance": target.tolerance,
            "vision_tolerance": target.vision_tolerance,
            "checks": checks,
            "ok": all(c["ok"] for c in checks),
        },
        "compare": None,
    }
    return rounded(report)


def band_target(outputs: list[Output], plan_steps: list[str], target: Target | None) -> float | None:
    """The vision share per-sequence ratios are judged against: the user's target, else the one the
    pack runs recorded (when they agree), so a plain ``fusionforge audit packed/`` reports it too."""
    if target and target.vision_ratio is not None:
        return target.vision_ratio
    recorded = {o.vision_ratio for o in outputs if o.step in plan_steps and o.vision_ratio is not None}
    return recorded.pop() if len(recorded) == 1 else None


def order_steps(outputs: list[Output], state: AuditState) -> list[str]:
    """Steps in chain order: an output comes after the output it was made from, else canonical order."""
    names = list(dict.fromkeys([o.step for o in outputs] + list(state.steps)))
    by_path = {o.path.rstrip("/"): o.step for o in outputs}
    after = {name: set() for name in names}  # step -> steps that must come before it
    for output in outputs:
        parent = by_path.get((output.upstream or "").rstrip("/"))
        if parent and parent != output.step:
            after[output.step].add(parent)

    def rank(name: str) -> tuple[int, int]:
        return (CANONICAL_STEPS.index(name) if name in CANONICAL_STEPS else len(CANONICAL_STEPS), names.index(name))

    ordered: list[str] = []
    pending = sorted(names, key=rank)
    while pending:
        ready = next((n for n in pending if after[n] <= set(ordered)), pending[0])  # a cycle: canonical order
        ordered.append(ready)
        pending.remove(ready)
    return [n for n in ordered if n in state.steps]


def _input(output: Output) -> dict[str, Any]:
    return {
        "path": output.path,
        "step": output.step,
        "complete": output.complete,
        "upstream": output.upstream,
        "partitions_done": output.partitions_done,
        "partitions_seen": output.partitions_seen,
    }


def _ratio(totals: dict[str, int]) -> float | None:
    tokens = totals["text_tokens"] + totals["vision_tokens"]
    return totals["vision_tokens"] / tokens if tokens else None


def _totals(totals: dict[str, int]) -> dict[str, Any]:
    keep = ("records", "text_bytes", "media_bytes", "text_tokens", "vision_tokens", "images", "videos")
    out = {k: totals[k] for k in keep}
    out["tokens"] = totals["text_tokens"] + totals["vision_tokens"]
    out["vision_ratio"] = _ratio(totals)
    return out


def _mixture(kept: RecordsState) -> list[dict[str, Any]]:
    """Kept records by source x modality x language, with each group's share of all tokens."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for key, row in kept.groups.items():
        current = groups.setdefault(key[:3], [0] * len(row))
        for i, value in enumerate(row):
            current[i] += value
    all_tokens = round(sum(row[3] + row[4] for row in groups.values()))
    rows = []
    for (source, modality, language), row in groups.items():
        values = {name: round(value) for name, value in zip(MEASURES, row)}
        tokens = values["text_tokens"] + values["vision_tokens"]
        rows.append(
            {
                "source": source,
                "modality": modality,
                "language": language,
                "records": values["records"],
                "text_bytes": values["text_bytes"],
                "media_bytes": values["media_bytes"],
                "text_tokens": values["text_tokens"],
                "vision_tokens": values["vision_tokens"],
                "tokens": tokens,
                "token_share": tokens / all_tokens if all_tokens else None,
            }
        )
    return sorted(rows, key=lambda r: (-r["tokens"], r["source"], r["modality"], r["language"]))


def _by_source(kept: RecordsState) -> list[dict[str, Any]]:
    sources = sorted({key[GROUP_KEYS.index("source")] for key in kept.groups})
    all_tokens = sum(row[3] + row[4] for row in kept.groups.values())
    rows = []
    for source in sources:
        totals = kept.totals(lambda key, s=source: key[0] == s)
        tokens = totals["text_tokens"] + totals["vision_tokens"]
        rows.append(
            {
                "source": source,
                "records": totals["records"],
                "text_tokens": totals["text_tokens"],
                "vision_tokens": totals["vision_tokens"],
                "tokens": tokens,
                "token_share": tokens / all_tokens if all_tokens else 0.0,
                "vision_ratio": _ratio(totals),
            }
        )
    return sorted(rows, key=lambda r: (-r["tokens"], r["source"]))


def _vision_by_preset(kept: RecordsState, presets: tuple[str, ...]) -> list[dict[str, Any]]:
    """Vision tokens and ratio of the kept records under each preset: in all, per modality, per source and per
    source x modality (``"all"`` where a key is summed over)."""
    pairs = sorted({(key[0], key[1]) for key in kept.groups})
    cells = [("all", "all"), *(("all", m) for m in sorted({m for _, m in pairs}))]
    for source in sorted({s for s, _ in pairs}):
        cells += [(source, "all"), *((source, m) for s, m in pairs if s == source)]
    rows = []
    for preset in presets:
        for source, modality in cells:
            totals = kept.totals(lambda key, s=source, m=modality: s in ("all", key[0]) and m in ("all", key[1]))
            vision = totals[preset_measure(preset)]
            tokens = totals["text_tokens"] + vision
            rows.append(
                {
                    "preset": preset,
                    "source": source,
                    "modality": modality,
                    "text_tokens": totals["text_tokens"],
                    "vision_tokens": vision,
                    "vision_ratio": vision / tokens if tokens else None,
                }
            )
    return rows


def _empty_source(source: str) -> dict[str, Any]:
    """A source that the packed plan or the target names but the last records step does not hold."""
    return {
        "source": source,
        "records": 0,
        "text_tokens": 0,
        "vision_tokens": 0,
        "tokens": 0,
        "token_share": 0.0,
        "vision_ratio": None,
    }


def _mixture_by_step(
    state: AuditState, records_steps: list[str], plan_steps: list[str], packing: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Token share per source after each step: how dedupe and filters shifted the mixture."""
    rows = []
    for step in records_steps:
        for row in _by_source(state.step(step).kept):
            rows.append(
                {
                    "step": step,
                    "source": row["source"],
                    "records": row["records"],
                    "tokens": row["tokens"],
                    "token_share": row["token_share"],
                }
            )
    if packing:
        for row in packing["tokens_by_source"]:
            rows.append(
                {
                    "step": plan_steps[-1],
                    "source": row["source"],
                    "records": None,
                    "tokens": row["tokens"],
                    "token_share": row["token_share"],
                }
            )
    return rows


def _distributions(kept: RecordsState, rejected: RecordsState) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"kept": {}, "rejected": {}}
    for state in (kept, rejected):
        for key, histogram in sorted(state.histograms.items()):
            status, metric = key.split("/", 1)
            out[status][metric] = histogram.to_dict()
    return out


def rounded(value: Any) -> Any:
    """Floats rounded to 10 significant digits: sums over different splits of a corpus print alike."""
    if isinstance(value, float):
        return round_significant(value)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value
