"""What the terminal tables and the HTML page show alike: records left after each step, marked quantiles.

Both renderers read the same report, so the rules that turn its figures into cells live here once:
a step that removed nothing from a group still leaves the group its records, and a quantile read
from log bins (more than ``EXACT_LIMIT`` distinct values) is marked as approximate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fusionforge.mixers.audit.histogram import EXACT_LIMIT, RELATIVE_ERROR

APPROXIMATE = "≈"
APPROXIMATE_NOTE = (
    f"{APPROXIMATE}: a quantile of a metric with more than {EXACT_LIMIT} distinct values, read from "
    f"fixed log bins: within ±{RELATIVE_ERROR:.2%} of the true value (counts, min, max and mean "
    f"stay exact)"
)
APPROXIMATE_FOOTNOTE = f"{APPROXIMATE} quantile read from log bins: within ±{RELATIVE_ERROR:.2%}"


def funnel_steps(report: dict[str, Any]) -> list[str]:
    """The steps of the funnel, in order."""
    return list(dict.fromkeys(row["step"] for row in report["funnel"].get("all", [])))


def remaining_after_steps(rows: list[dict[str, Any]], steps: list[str]) -> list[int | None]:
    """Records of one group left after each of ``steps``.

    The funnel lists a step for a group only when the step changed it, so a step without rows for
    the group carries the count before it forward (the group still has those records).
    """
    left = rows[0]["remaining"] if rows else None
    out = []
    for step in steps:
        mine = [row for row in rows if row["step"] == step]
        if mine:
            left = mine[-1]["remaining"]
        out.append(left)
    return out


def preset_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``vision_by_preset`` worth a line: a source's total is left out when the source has one
    modality (its one source x modality row says the same)."""
    rows = report["vision_by_preset"]
    modalities: dict[tuple[str, str], int] = {}
    for row in rows:
        if row["source"] != "all" and row["modality"] != "all":
            key = (row["preset"], row["source"])
            modalities[key] = modalities.get(key, 0) + 1
    return [
        r
        for r in rows
        if r["source"] == "all" or r["modality"] != "all" or modalities.get((r["preset"], r["source"]), 0) != 1
    ]


def quantile_mark(histogram: dict[str, Any]) -> str:
    """``APPROXIMATE`` when the histogram's quantiles come from bins, else empty."""
    return "" if histogram.get("quantiles_exact", True) else APPROXIMATE


def histograms_of(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every histogram the report shows quantiles of."""
    for by_status in report["distributions"].values():
        for histograms in by_status.values():
            yield from histograms.values()
    if report["duplicates"]:
        yield report["duplicates"]["similarity"]
    if report["packing"]:
        yield from report["packing"]["per_sequence"].values()
    if report.get("sft"):
        yield report["sft"]["tokens_per_conversation"]
    if report.get("rft"):
        yield report["rft"]["pass_rate"]


def has_approximate_quantiles(report: dict[str, Any]) -> bool:
    return any(quantile_mark(h) for h in histograms_of(report) if h["count"])


def band_target_label(packing: dict[str, Any]) -> str:
    """What the per-sequence band is centred on: the target share, or why there is none."""
    target = packing.get("band_target")
    return "the target (none given or recorded)" if target is None else f"the target {target:.2%}"
