"""Sections of the report that come from one kind of file: dedupe clusters and pack plans."""

from __future__ import annotations

from typing import Any

from fusionforge.mixers.audit.clusters import ClusterState
from fusionforge.mixers.audit.plan import PlanState
from fusionforge.mixers.audit.state import AuditState

RATIO_BAND = 0.05  # per-sequence vision ratio: the share of sequences within +-5 pp of the target


def duplicates(state: AuditState, steps: list[str]) -> dict[str, Any] | None:
    """Cluster sizes and similarities of every step that wrote clusters."""
    with_clusters = [s for s in steps if state.step(s).clusters.members]
    if not with_clusters:
        return None
    merged = ClusterState()
    for step in with_clusters:
        merged.merge(state.step(step).clusters)
    sizes = merged.sizes
    clusters = sum(sizes.values())
    return {
        "steps": with_clusters,
        "clusters": clusters,
        "members_listed": merged.members,
        "records_in_clusters": sum(size * n for size, n in sizes.items()),
        "duplicates": merged.removed,
        "size_distribution": [{"size": size, "clusters": n} for size, n in sorted(sizes.items())],
        "size_quantiles": _exact_quantiles(sizes),
        "similarity": merged.similarity.to_dict(),
    }


def _exact_quantiles(counts: dict[int, int]) -> dict[str, int | None]:
    total = sum(counts.values())
    out: dict[str, int | None] = {}
    for q in (0.5, 0.9, 0.99, 1.0):
        rank, seen, value = q * total, 0, None
        for size in sorted(counts):
            seen += counts[size]
            if seen >= rank:
                value = size
                break
        out[f"p{round(q * 100)}" if q < 1 else "max"] = value if total else None
    return out


def packing_figures(state: AuditState, plan_steps: list[str], goal: float | None) -> dict[str, Any] | None:
    """Padding, vision ratios and tokens per source of the pack plans (``goal``: the target ratio)."""
    if not plan_steps:
        return None
    plan = PlanState()
    for step in plan_steps:
        plan.merge(state.step(step).plan)
    tokens = plan.text_tokens + plan.vision_tokens
    padding = plan.capacity - plan.used_with_capacity if plan.capacity_known else None
    by_source: dict[str, int] = {}
    for (source, _kind), n in plan.source_tokens.items():
        by_source[source] = by_source.get(source, 0) + n
    source_total = sum(by_source.values())
    return {
        "steps": plan_steps,
        "sequences": round(plan.sequences),
        "tokens": round(tokens),
        "text_tokens": round(plan.text_tokens),
        "vision_tokens": round(plan.vision_tokens),
        "vision_ratio": plan.vision_tokens / tokens if tokens else None,
        "capacity_tokens": round(plan.capacity) if plan.capacity_known else None,
        "padding_tokens": None if padding is None else round(padding),
        "padding_fraction": padding / plan.capacity if plan.capacity_known and plan.capacity else None,
        "efficiency": plan.used_with_capacity / plan.capacity if plan.capacity_known and plan.capacity else None,
        "zero_vision_sequences": round(plan.zero_vision),
        "zero_vision_share": plan.zero_vision / plan.sequences if plan.sequences else None,
        "band": RATIO_BAND,
        "band_target": goal,
        "within_band_share": plan.share_within(goal, RATIO_BAND) if goal is not None else None,
        "split_documents": round(plan.split_documents),
        "split_segments": round(plan.split_segments),
        "tokens_by_source": [
            {"source": s, "tokens": round(n), "token_share": n / source_total if source_total else None}
            for s, n in sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "per_sequence": {name: h.to_dict() for name, h in sorted(plan.histograms.items())},
    }
