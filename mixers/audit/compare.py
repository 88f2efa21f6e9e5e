"""Two audits side by side: the headline figures of each and their differences (this - other)."""

from __future__ import annotations

from typing import Any

from fusionforge.mixers.audit.summary import rounded

_TOTALS = ("records", "tokens", "text_tokens", "vision_tokens", "vision_ratio", "text_bytes", "media_bytes")
_PACKING = (
    "sequences",
    "vision_ratio",
    "padding_fraction",
    "zero_vision_share",
    "within_band_share",
    "split_documents",
)


def compare_reports(this: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``this`` with a ``compare`` section: the other audit's inputs and one row per figure."""
    mine, theirs = figures(this), figures(other)
    rows = []
    for name in list(dict.fromkeys([*mine, *theirs])):
        a, b = mine.get(name), theirs.get(name)
        delta = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        relative = delta / b if delta is not None and b else None
        rows.append({"figure": name, "this": a, "other": b, "delta": delta, "relative": relative})
    return {**this, "compare": rounded({"other": other, "rows": rows})}


def figures(report: dict[str, Any]) -> dict[str, float | int | None]:
    """The comparable figures of a report, by a stable dotted name."""
    out: dict[str, float | int | None] = {f"totals.{k}": report["totals"][k] for k in _TOTALS}
    for row in report["by_source"]:
        for key in ("records", "tokens", "token_share", "vision_ratio"):
            out[f"source.{row['source']}.{key}"] = row[key]
    for row in report["funnel"].get("all", []):
        out[f"funnel.{row['step']}.{row['stage']}"] = row["remaining"]
    for row in report["drop_reasons"]:
        out[f"dropped.{row['step']}.{row['reason']}"] = row["records"]
    if report["duplicates"]:
        for key in ("clusters", "duplicates"):
            out[f"duplicates.{key}"] = report["duplicates"][key]
    if report["packing"]:
        for key in _PACKING:
            out[f"packing.{key}"] = report["packing"][key]
    if report["sft"]:
        for row in report["sft"]["splits"]:
            for key in ("conversations", "rows", "tokens"):
                out[f"sft.{row['split']}.{key}"] = row[key]
    if report["rft"]:
        for key in ("prompts", "mean_pass_rate", "samples", "accepted"):
            out[f"rft.{key}"] = report["rft"][key]
    if report["final_step"]:
        for metric, histogram in report["distributions"][report["final_step"]]["kept"].items():
            out[f"median.{metric}"] = histogram["quantiles"].get("p50")
    return out
