"""The report as rich tables for a terminal: the mixture first, then how it got there."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fusionforge.mixers.audit.presentation import (
    APPROXIMATE_FOOTNOTE,
    APPROXIMATE_NOTE,
    band_target_label,
    funnel_steps,
    has_approximate_quantiles,
    preset_rows,
    quantile_mark,
    remaining_after_steps,
)

MAX_MIXTURE_ROWS = 15
MAX_COMPARE_ROWS = 40


def render(report: dict[str, Any]) -> RenderableType:
    """Every section of ``report`` that has data, as one renderable."""
    parts: list[RenderableType] = [_header(report)]
    if report["by_source"]:  # outputs with records (not only ledgers, SFT sets or RFT results)
        parts += [_by_source(report), _vision(report)]
    if report["vision_by_preset"]:
        parts.append(_presets(report))
    if report["mixture"]:
        parts.append(_mixture(report))
    if report["funnel"].get("all"):
        parts.append(_funnel(report))
        parts.append(_funnel_by_group(report))
    if report["drop_reasons"]:
        parts.append(_reasons(report))
    if report["duplicates"]:
        parts.append(_duplicates(report["duplicates"]))
    if report["domains"]:
        parts.append(_domains(report["domains"]))
    if report["final_step"]:
        parts.append(_distributions(report))
    if report["packing"]:
        parts.append(_packing(report["packing"]))
    if report["sft"]:
        parts.append(_sft(report["sft"]))
    if report["rft"]:
        parts.append(_rft(report["rft"]))
    if report["target"]:
        parts.append(_target(report["target"]))
    if report["compare"]:
        parts.append(_compare(report["compare"]))
    return Group(*parts)


def short_summary(report: dict[str, Any]) -> RenderableType:
    """The mixture by source, the vision ratio and the records left after each step (for the demo)."""
    parts: list[RenderableType] = [_by_source(report), _vision(report)]
    if report["funnel"].get("all"):
        parts.append(_funnel_by_group(report))
    if report["domains"]:
        parts.append(_domains(report["domains"]))
    return Group(*parts)


def fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{value * 100:.2f}%"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def _header(report: dict[str, Any]) -> Text:
    text = Text()
    text.append("fusionforge audit", style="bold")
    text.append(f"  steps: {' -> '.join(report['steps']) or '-'}   rows read: {report['rows_read']:,}\n")
    for item in report["inputs"]:
        state = (
            ""
            if item["complete"]
            else (f"  [unfinished run: {item['partitions_done']} of {item['partitions_seen']} partitions done]")
        )
        text.append(f"  {item['step']:<8} {item['path']}{state}\n", style=None if item["complete"] else "yellow")
    if report["exact"]:
        text.append("  exact: every record was read\n", style="green")
    else:
        sample = report["sample"]
        text.append(
            f"  SAMPLED: {sample['fraction']:.2%} of row groups (seed {sample['seed']}); figures are estimates\n",
            style="bold yellow",
        )
    if has_approximate_quantiles(report):
        text.append(f"  {APPROXIMATE_NOTE}\n", style="dim")
    basis = report["token_basis"]
    if basis["vision_preset"]:
        text.append(f"  vision tokens counted with the {basis['vision_preset']} preset\n")
    if basis["text_estimated_records"] or basis["vision_estimated_records"]:
        text.append(
            f"  tokens estimated for {basis['text_estimated_records']:,} (text) / "
            f"{basis['vision_estimated_records']:,} (vision) of {basis['records']:,} records: "
            f"{basis['estimate_rule']['text']}; {basis['estimate_rule']['vision']}\n",
            style="dim",
        )
    for skipped in report["skipped"]:
        text.append(f"  skipped {skipped}\n", style="dim")
    return text


def _table(title: str, *columns: str, text_columns: int = 1) -> Table:
    """Columns after the first ``text_columns`` hold numbers and are right-aligned."""
    table = Table(title=title, header_style="bold", title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < text_columns else "right")
    return table


def _by_source(report: dict[str, Any]) -> Table:
    targeted = any(row["target_share"] is not None for row in report["by_source"])
    packed = report["packing"] is not None
    extra = (("packed share",) if packed else ()) + (("target", "deviation") if targeted else ())
    table = _table(
        f"mixture by source (records and tokens after step {report['final_step']})",
        "source",
        "records",
        "tokens",
        "share",
        "vision ratio",
        *extra,
    )
    for row in report["by_source"]:
        style = "red" if row["ok"] is False else None
        cells = [
            row["source"],
            fmt(row["records"]),
            fmt(row["tokens"]),
            fmt(row["token_share"], True),
            fmt(row["vision_ratio"], True),
        ]
        if packed:
            cells.append(fmt(row["packed_share"], True))
        if targeted:
            cells += [fmt(row["target_share"], True), fmt(row["deviation"], True)]
        table.add_row(*cells, style=style)
    totals = report["totals"]
    table.add_row(
        "total",
        fmt(totals["records"]),
        fmt(totals["tokens"]),
        "100%",
        fmt(totals["vision_ratio"], True),
        *([""] * len(extra)),
        style="bold",
    )
    return table


def _vision(report: dict[str, Any]) -> Text:
    vision = report["vision_ratio"]
    line = Text(f"vision-token ratio: {fmt(vision['realised'], True)} ({vision['basis'] or 'no records'})")
    if vision["target"] is not None:
        line.append(
            f"   target {fmt(vision['target'], True)}, deviation {fmt(vision['deviation'], True)}",
            style="green" if vision["ok"] else "bold red",
        )
    return line


def _presets(report: dict[str, Any]) -> Table:
    table = _table(
        "vision tokens by preset (placeholders, without wrapper tokens)",
        "preset",
        "source",
        "modality",
        "text tokens",
        "vision tokens",
        "vision ratio",
        text_columns=3,
    )
    for row in preset_rows(report):
        table.add_row(
            row["preset"],
            row["source"],
            row["modality"],
            fmt(row["text_tokens"]),
            fmt(row["vision_tokens"]),
            fmt(row["vision_ratio"], True),
            style="bold" if row["source"] == row["modality"] == "all" else None,
        )
    return table


def _mixture(report: dict[str, Any]) -> Table:
    table = _table(
        "records and tokens by source x modality x language",
        "source",
        "modality",
        "language",
        "records",
        "text bytes",
        "media bytes",
        "text tokens",
        "vision tokens",
        "share",
        text_columns=3,
    )
    rows = report["mixture"]
    for row in rows[:MAX_MIXTURE_ROWS]:
        table.add_row(
            row["source"],
            row["modality"],
            row["language"],
            fmt(row["records"]),
            fmt(row["text_bytes"]),
            fmt(row["media_bytes"]),
            fmt(row["text_tokens"]),
            fmt(row["vision_tokens"]),
            fmt(row["token_share"], True),
        )
    if len(rows) > MAX_MIXTURE_ROWS:
        table.caption = f"{len(rows) - MAX_MIXTURE_ROWS} more groups in --json / --html"
    return table


def _funnel(report: dict[str, Any]) -> Table:
    table = _table("funnel (all records)", "step", "stage", "removed", "remaining", "removed tokens", text_columns=2)
    for row in report["funnel"]["all"]:
        style = "red" if row["status"] == "failed" else "yellow" if row["stage"] == "not carried over" else None
        table.add_row(
            row["step"],
            row["stage"],
            fmt(row["removed"]) if row["removed"] else "",
            fmt(row["remaining"]),
            fmt(row["removed_tokens"]) if row["removed_tokens"] else "",
            style=style,
        )
    return table


def _funnel_by_group(report: dict[str, Any]) -> Table:
    """Records left after each step, per source/modality."""
    steps = funnel_steps(report)
    table = _table("records left after each step, by source/modality", "source/modality", "input", *steps)
    for group, rows in report["funnel"].items():
        table.add_row(
            group,
            fmt(rows[0]["remaining"]),
            *(fmt(n) for n in remaining_after_steps(rows, steps)),
            style="bold" if group == "all" else None,
        )
    return table


def _reasons(report: dict[str, Any]) -> Table:
    table = _table(
        "top drop and failure reasons", "step", "reason", "status", "records", "share", "examples", text_columns=3
    )
    table.columns[-1].justify = "left"
    for row in report["drop_reasons"]:
        table.add_row(
            row["step"],
            row["reason"],
            row["status"],
            fmt(row["records"]),
            fmt(row["share_of_step_inputs"], True),
            ", ".join(row["examples"][:3]),
        )
    return table


def _duplicates(duplicates: dict[str, Any]) -> Table:
    table = _table("duplicate clusters", "measure", "value")
    for label, key in (
        ("clusters", "clusters"),
        ("records in clusters", "records_in_clusters"),
        ("duplicates removed", "duplicates"),
    ):
        table.add_row(label, fmt(duplicates[key]))
    quantiles = duplicates["size_quantiles"]
    table.add_row(
        "cluster size p50 / p90 / p99 / max", " / ".join(fmt(quantiles[k]) for k in ("p50", "p90", "p99", "max"))
    )
    if duplicates["similarity"]["count"]:
        table.add_row("similarity p5 / p50", " / ".join(_quantiles(duplicates["similarity"], ("p5", "p50"))))
    return table


def _domains(domains: dict[str, Any]) -> Table:
    title = f"documents per domain ({domains['domains']:,} domains{', capped' if domains['capped'] else ''})"
    table = _table(title, "domain", *domains["steps"])
    for row in domains["rows"]:
        table.add_row(row["domain"], *(fmt(row["records"].get(step)) for step in domains["steps"]))
    return table


def _distributions(report: dict[str, Any]) -> Table:
    table = _table(
        "distributions (kept records; scores: kept vs rejected)",
        "step",
        "metric",
        "count",
        "p5",
        "p50",
        "p95",
        "max",
        text_columns=2,
    )
    marked = False
    for step, by_status in report["distributions"].items():
        for status in ("kept", "rejected"):
            for metric, hist in by_status[status].items():
                if status == "rejected" and not metric.startswith("score/"):
                    continue
                if step != report["final_step"] and not metric.startswith("score/"):
                    continue
                label = f"{metric} ({status})" if metric.startswith("score/") else metric
                table.add_row(
                    step, label, fmt(hist["count"]), *_quantiles(hist, ("p5", "p50", "p95")), fmt(hist["max"])
                )
                marked = marked or bool(quantile_mark(hist))
    if marked:
        table.caption = APPROXIMATE_FOOTNOTE
    return table


def _quantiles(histogram: dict[str, Any], keys: tuple[str, ...], percent: bool = False) -> list[str]:
    """The quantile cells, each marked when read from bins."""
    quantiles, mark = histogram.get("quantiles", {}), quantile_mark(histogram)
    return [mark + fmt(quantiles.get(k), percent) if quantiles.get(k) is not None else "-" for k in keys]


def _packing(packing: dict[str, Any]) -> Table:
    table = _table("packing", "measure", "value")
    per_sequence = packing["per_sequence"].get("vision_ratio", {})
    for label, value in (
        ("sequences", fmt(packing["sequences"])),
        ("tokens", fmt(packing["tokens"])),
        ("padding", fmt(packing["padding_fraction"], True)),
        ("efficiency", fmt(packing["efficiency"], True)),
        ("vision ratio (global)", fmt(packing["vision_ratio"], True)),
        (
            "vision ratio per sequence p5 / p50 / p95",
            " / ".join(_quantiles(per_sequence, ("p5", "p50", "p95"), percent=True)),
        ),
        ("zero-vision sequences", fmt(packing["zero_vision_share"], True)),
        (
            f"sequences within ±{packing['band'] * 100:.0f} pp of {band_target_label(packing)}",
            fmt(packing["within_band_share"], True),
        ),
        ("split documents", fmt(packing["split_documents"])),
    ):
        table.add_row(label, value)
    return table


def _sft(sft: dict[str, Any]) -> Table:
    table = _table(
        "SFT set (a row per copy the mixture repeats)",
        "split",
        "source",
        "conversations",
        "rows",
        "tokens",
        "share",
        "tool use",
        text_columns=2,
    )
    for total in sft["splits"]:
        for row in [r for r in sft["by_source"] if r["split"] == total["split"]] + [{**total, "source": "all"}]:
            table.add_row(
                row["split"],
                row["source"],
                fmt(row["conversations"]),
                fmt(row["rows"]),
                fmt(row["tokens"]),
                fmt(row.get("token_share", 1.0), True),
                fmt(row["tool_use_share"], True),
                style="bold" if row["source"] == "all" else None,
            )
    tokens = sft["tokens_per_conversation"]
    if tokens["count"]:
        table.caption = "tokens per conversation p50 / p95 / max: " + " / ".join(
            [*_quantiles(tokens, ("p50", "p95")), fmt(tokens["max"])]
        )
    return table


def _rft(rft: dict[str, Any]) -> Table:
    title = f"RFT results: {rft['prompts']:,} prompts, mean pass rate {fmt(rft['mean_pass_rate'], True)}"
    table = _table(title, "task", "prompts", "samples", "passed", "pass rate", "accepted")
    for row in rft["by_task"]:
        table.add_row(
            row["task"],
            fmt(row["prompts"]),
            fmt(row["samples"]),
            fmt(row["passed"]),
            fmt(row["pass_rate"], True),
            fmt(row["accepted"]),
        )
    buckets = ", ".join(f"{b['bucket']} {b['prompts']:,}" for b in rft["buckets"])
    statuses = ", ".join(f"{s['status']} {s['samples']:,}" for s in rft["by_status"])
    table.caption = (
        f"buckets: {buckets or '-'}; samples: {statuses or '-'} ({rft['accepted']:,} accepted); tokens: "
        f"{rft['prompt_tokens']:,} prompt, {rft['completion_tokens']:,} completion"
    )
    return table


def _target(target: dict[str, Any]) -> Table:
    title = f"target {target['path'] or ''} (tolerance {target['tolerance']:.2%}): " + (
        "all within tolerance" if target["ok"] else "DEVIATIONS"
    )
    table = _table(title, "figure", "target", "realised", "deviation")
    for check in target["checks"]:
        table.add_row(
            check["figure"],
            fmt(check["target"], True),
            fmt(check["realised"], True),
            fmt(check["deviation"], True),
            style=None if check["ok"] else "bold red",
        )
    return table


def _compare(compare: dict[str, Any]) -> Table:
    other = ", ".join(i["path"] for i in compare["other"]["inputs"])
    table = _table(f"compared with {other} (delta = this - other)", "figure", "this", "other", "delta", "relative")
    rows = [r for r in compare["rows"] if r["delta"] not in (0, None) or r["this"] != r["other"]]
    for row in rows[:MAX_COMPARE_ROWS]:
        style = "green" if (row["delta"] or 0) > 0 else "red" if (row["delta"] or 0) < 0 else None
        table.add_row(
            row["figure"],
            fmt(row["this"]),
            fmt(row["other"]),
            fmt(row["delta"]),
            fmt(row["relative"], True),
            style=style,
        )
    if len(rows) > MAX_COMPARE_ROWS:
        table.caption = f"{len(rows) - MAX_COMPARE_ROWS} more differing figures in --json / --html"
    table.caption = (table.caption or "") + f"  ({len(compare['rows']) - len(rows)} figures equal)"
    return table
