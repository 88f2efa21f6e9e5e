"""The report's plots, drawn with matplotlib (Agg) and returned as base64 PNGs to inline in the page."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

from fusionforge.mixers.audit.presentation import quantile_mark
from fusionforge.pipelines.core.errors import MissingDependency

STEP_COLORS = ("#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b")
REALISED, TARGET, OTHER, BAD, REJECTED = "#1f77b4", "#ff7f0e", "#7f7f7f", "#d62728", "#e377c2"


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependency("matplotlib", "report") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def to_png(figure) -> str:
    """The figure as a base64 PNG (and the figure closed)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def mixture_bars(report: dict[str, Any]) -> str | None:
    """Token share per source: after each step, the target, and the other audit when comparing."""
    rows = report["mixture_by_step"]
    if not rows:
        return None
    plt = _pyplot()
    steps = list(dict.fromkeys(r["step"] for r in rows))
    sources = [r["source"] for r in report["by_source"]] or list(dict.fromkeys(r["source"] for r in rows))
    sources += [s for s in dict.fromkeys(r["source"] for r in rows) if s not in sources]
    series: list[tuple[str, str, list[float]]] = []
    for i, step in enumerate(steps):
        share = {r["source"]: r["token_share"] or 0 for r in rows if r["step"] == step}
        series.append((f"after {step}", STEP_COLORS[min(i + 5 - len(steps), 4)], [share.get(s, 0) for s in sources]))
    target = report["target"]
    if target:
        goals = {r["source"]: r["target_share"] for r in report["by_source"] if r["target_share"] is not None}
        if goals:
            series.append(("target", TARGET, [goals.get(s, 0) for s in sources]))
    if report["compare"]:
        other = {r["source"]: r["token_share"] for r in report["compare"]["other"]["by_source"]}
        series.append(("other audit", OTHER, [other.get(s, 0) for s in sources]))
    height = 0.8 / len(series)
    figure, axes = plt.subplots(figsize=(9, 0.5 + 0.45 * len(sources) * max(1, len(series) / 2)))
    for k, (label, color, values) in enumerate(series):
        positions = [i + k * height for i in range(len(sources))]
        axes.barh(positions, values, height=height, color=color, label=label)
    failing = {r["source"] for r in report["by_source"] if r["ok"] is False}
    axes.set_yticks([i + height * (len(series) - 1) / 2 for i in range(len(sources))])
    axes.set_yticklabels(sources)
    for tick, source in zip(axes.get_yticklabels(), sources):
        if source in failing:
            tick.set_color(BAD)
            tick.set_fontweight("bold")
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    axes.set_xlabel("share of tokens")
    axes.set_title("mixture by source: realised vs target")
    axes.legend(loc="lower right", fontsize=8)
    return to_png(figure)


def funnel(report: dict[str, Any]) -> str | None:
    """Records remaining after each stage of each step (all sources)."""
    rows = report["funnel"].get("all")
    if not rows:
        return None
    plt = _pyplot()
    steps = list(dict.fromkeys(r["step"] for r in rows))
    labels = [f"{r['step']}: {r['stage']}" for r in rows]
    colors = [STEP_COLORS[min(steps.index(r["step"]) + 5 - len(steps), 4)] for r in rows]
    figure, axes = plt.subplots(figsize=(9, 0.6 + 0.32 * len(rows)))
    axes.barh(range(len(rows)), [r["remaining"] for r in rows], color=colors)
    for i, row in enumerate(rows):
        if row["removed"]:
            axes.text(row["remaining"], i, f"  {-row['removed']:+,}", va="center", fontsize=8)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels(labels, fontsize=8)
    for tick, row in zip(axes.get_yticklabels(), rows):
        if row["status"] == "failed":
            tick.set_color(BAD)
    axes.invert_yaxis()
    axes.set_xlabel("records remaining (failures in red)")
    axes.set_title("funnel: ingested -> dedupe -> filters -> packed")
    return to_png(figure)


def vision_ratio(report: dict[str, Any]) -> str | None:
    """Per-sequence vision ratio spread (pack plan) or per-source ratios, with realised and target lines."""
    plt = _pyplot()
    realised, goal = report["vision_ratio"]["realised"], report["vision_ratio"]["target"]
    packing = report["packing"]
    figure, axes = plt.subplots(figsize=(9, 3.2))
    if packing and packing["per_sequence"].get("vision_ratio", {}).get("count"):
        _bars(axes, packing["per_sequence"]["vision_ratio"], REALISED, "sequences", log=False)
        axes.set_xlabel("vision-token ratio of a sequence")
        axes.set_title("per-sequence vision ratio spread")
    else:
        rows = [r for r in report["by_source"] if r["vision_ratio"] is not None]
        if not rows:
            plt.close(figure)
            return None
        axes.bar([r["source"] for r in rows], [r["vision_ratio"] for r in rows], color=REALISED)
        axes.set_ylabel("vision-token ratio")
        axes.set_title("vision-token ratio by source")
    draw = axes.axvline if packing else axes.axhline
    if realised is not None:
        draw(realised, color="black", linestyle="--", label=f"realised {realised:.1%}")
    if goal is not None:
        ok = report["vision_ratio"]["ok"]
        draw(goal, color=TARGET if ok else BAD, linewidth=2, label=f"target {goal:.1%}")
    axes.legend(fontsize=8)
    return to_png(figure)


def histograms(panels: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> str | None:
    """Small multiples: one panel per (title, kept histogram, rejected histogram or None)."""
    panels = [p for p in panels if p[1]["count"] or (p[2] and p[2]["count"])]
    if not panels:
        return None
    plt = _pyplot()
    columns = 3
    rows = -(-len(panels) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(10, 2.6 * rows), squeeze=False)
    for axes, (title, kept, rejected) in zip(grid.flat, panels):
        positive = all(b[0] > 0 for h in (kept, rejected) if h for b in h["bins"])
        _bars(axes, kept, REALISED, "kept", log=positive)
        if rejected and rejected["count"]:
            _bars(axes, rejected, REJECTED, "rejected", log=positive, alpha=0.6)
            axes.legend(fontsize=7)
        median = kept["quantiles"].get("p50") if kept["count"] else None
        mark = quantile_mark(kept)
        axes.set_title(f"{title}" + (f"  (p50 {mark}{median:.4g})" if median is not None else ""), fontsize=9)
        axes.tick_params(labelsize=7)
    for axes in list(grid.flat)[len(panels) :]:
        axes.axis("off")
    return to_png(figure)


def cluster_sizes(duplicates: dict[str, Any]) -> str | None:
    if not duplicates or not duplicates["size_distribution"]:
        return None
    plt = _pyplot()
    sizes = {row["size"]: row["clusters"] for row in duplicates["size_distribution"]}
    figure, axes = plt.subplots(figsize=(9, 3))
    axes.bar([str(s) for s in sorted(sizes)], [sizes[s] for s in sorted(sizes)], color=REALISED)
    axes.set_xlabel("records in the cluster")
    axes.set_ylabel("clusters")
    axes.set_title("duplicate-cluster sizes")
    return to_png(figure)


def _bars(axes, histogram: dict[str, Any], color: str, label: str, log: bool, alpha: float = 1.0) -> None:
    """Draw a histogram, its fine bins regrouped for the eye: 4 per octave (log axis) or 40 across (linear)."""
    low, high = histogram["min"], histogram["max"]
    octaves = math.log2(high / low) if log and low and high and low > 0 else 0
    per_octave = int(min(32, max(2, 30 / octaves))) if octaves else 4
    lefts, widths, heights = display_bins(histogram, log, per_octave=per_octave)
    if not heights:
        return
    if log:
        plt = _pyplot()
        axes.set_xscale("log")
        plain = plt.FuncFormatter(lambda v, _: f"{v:g}")
        axes.xaxis.set_major_formatter(plain)
        axes.xaxis.set_minor_formatter(plt.NullFormatter() if octaves > 1 else plain)
    axes.bar(lefts, heights, width=widths, align="edge", color=color, alpha=alpha, label=label)


def display_bins(
    histogram: dict[str, Any], log: bool, per_octave: int = 4, across: int = 40
) -> tuple[list[float], list[float], list[int]]:
    """(left edges, widths, counts) of the bars to draw; on a log axis, zeros and negatives are left out."""
    bins = histogram["bins"]
    groups: dict[int, int] = {}
    if log:
        for low, _high, count in bins:
            if low > 0:
                key = math.floor(math.log2(low) * per_octave + 1e-9)
                groups[key] = groups.get(key, 0) + count
        edges = {k: (2 ** (k / per_octave), 2 ** ((k + 1) / per_octave)) for k in groups}
    else:
        low_all, high_all = histogram["min"], histogram["max"]
        width = (high_all - low_all) / across if high_all > low_all else 1.0
        for low, high, count in bins:
            middle = (low + high) / 2
            key = min(across - 1, max(0, math.floor((middle - low_all) / width)))
            groups[key] = groups.get(key, 0) + count
        edges = {k: (low_all + k * width, low_all + (k + 1) * width) for k in groups}
    keys = sorted(groups)
    return [edges[k][0] for k in keys], [edges[k][1] - edges[k][0] for k in keys], [groups[k] for k in keys]
