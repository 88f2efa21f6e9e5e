"""The audit report as ONE self-contained HTML file: inline CSS, plots as inline PNGs, no scripts, no links.

It opens offline in any browser (and in a headless one in the tests). Deviations beyond the target's
tolerance are red, in the tables and in the mixture plot's labels.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fusionforge.mixers.audit import plots
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
from fusionforge.pipelines.core.io import atomic_path

CSS = """
body { font-family: DejaVu Sans, Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ccc; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid #ccd; border-radius: 6px; padding: 8px 14px; min-width: 140px; background: #f7f9fc; }
.card .v { font-size: 20px; font-weight: bold; } .card .k { font-size: 12px; color: #555; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; } th { background: #eef2f7; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00000; font-weight: bold; background: #fde8e8; } .ok { color: #17692b; }
.note { font-size: 12px; color: #555; } .warn { color: #8a5a00; font-weight: bold; }
img { max-width: 100%; display: block; margin: 6px 0; }
"""


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    """Write the page atomically; return its path."""
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_text(render_html(report), encoding="utf-8")
    return target


def render_html(report: dict[str, Any]) -> str:
    body = [_header(report), _cards(report)]
    if report["by_source"] or report["target"]:  # records to show (not only ledgers, SFT sets, RFT results)
        body += _section(
            "Mixture: realised vs target",
            [_image(plots.mixture_bars(report), "mixture"), _by_source_table(report), _target_table(report)],
        )
        body += _section(
            "Vision-token ratio", [_image(plots.vision_ratio(report), "vision ratio"), _presets_table(report)]
        )
        body += _section("Records and tokens by source x modality x language", [_mixture_table(report)])
    if report["funnel"].get("all"):
        body += _section("Funnel", [_image(plots.funnel(report), "funnel"), _funnel_table(report)])
    if report["drop_reasons"]:
        body += _section("Top drop and failure reasons", [_reasons_table(report)])
    if report["duplicates"]:
        body += _section(
            "Duplicate clusters",
            [
                _image(plots.cluster_sizes(report["duplicates"]), "cluster sizes"),
                _duplicates_table(report["duplicates"]),
            ],
        )
    if report["domains"]:
        body += _section("Documents per domain", [_domains_table(report["domains"])])
    body += _section("Distributions", _distribution_images(report) + [_distribution_table(report)])
    if report["packing"]:
        body += _section("Packing", [_packing_table(report["packing"])])
    if report["sft"]:
        body += _section(
            "SFT set",
            [
                _sft_table(report["sft"]),
                _image(
                    plots.histograms([("tokens per conversation", report["sft"]["tokens_per_conversation"], None)]),
                    "SFT tokens",
                ),
            ],
        )
    if report["rft"]:
        body += _section(
            "RFT results",
            [
                _rft_table(report["rft"]),
                _image(
                    plots.histograms([("pass rate per prompt", report["rft"]["pass_rate"], None)]), "RFT pass rates"
                ),
            ],
        )
    if report["compare"]:
        body += _section("Comparison (delta = this - other)", [_compare_table(report["compare"])])
    head = f'<head><meta charset="utf-8"><title>fusionforge audit</title><style>{CSS}</style></head>'
    return f'<!DOCTYPE html>\n<html lang="en">{head}<body>\n' + "\n".join(body) + "\n</body></html>\n"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{value * 100:.2f}%"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return _e(value)


def _section(title: str, parts: list[str]) -> list[str]:
    parts = [p for p in parts if p]
    return [f"<h2>{_e(title)}</h2>", *parts] if parts else []


def _image(png: str | None, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{png}">' if png else ""


def _table(headers: list[str], rows: list[list[tuple[str, str]]]) -> str:
    """``rows`` of (html, css class) cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="{c}">{v}</td>' for v, c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _header(report: dict[str, Any]) -> str:
    inputs = "".join(
        f"<li>{_e(i['step'])}: {_e(i['path'])}"
        + (
            ""
            if i["complete"]
            else ' <span class="warn">unfinished run: '
            f"{i['partitions_done']} of {i['partitions_seen']} partitions</span>"
        )
        + "</li>"
        for i in report["inputs"]
    )
    if report["exact"]:
        exact = '<p class="ok">Exact: every record of these outputs was read.</p>'
        if has_approximate_quantiles(report):
            exact += f'<p class="note">{_e(APPROXIMATE_NOTE)}.</p>'
    else:
        s = report["sample"]
        exact = (
            f'<p class="warn">Sampled: {s["fraction"]:.2%} of the row groups of every file (seed {s["seed"]}); '
            f"{s['rows_read']:,} of {s['rows_total']:,} rows read. Figures are estimates.</p>"
        )
    basis = report["token_basis"]
    tokens = (
        f'<p class="note">Vision tokens counted with the {_e(basis["vision_preset"])} preset.</p>'
        if basis["vision_preset"]
        else ""
    )
    if basis["text_estimated_records"] or basis["vision_estimated_records"]:
        tokens += (
            f'<p class="note">Token counts estimated for {basis["text_estimated_records"]:,} (text) and '
            f"{basis['vision_estimated_records']:,} (vision) of {basis['records']:,} records: "
            f"{_e(basis['estimate_rule']['text'])}; {_e(basis['estimate_rule']['vision'])}.</p>"
        )
    skipped = "".join(f"<li>skipped {_e(s)}</li>" for s in report["skipped"])
    return (
        f'<h1>fusionforge audit</h1><p class="note">steps: {_e(" -> ".join(report["steps"]) or "-")}</p>'
        f'<ul class="note">{inputs}{skipped}</ul>{exact}{tokens}'
    )


def _cards(report: dict[str, Any]) -> str:
    totals, vision = report["totals"], report["vision_ratio"]
    after = f" after {report['final_step']}" if report["final_step"] else ""
    cards = [
        (f"records{after}", _num(totals["records"])),
        (f"tokens{after}", _num(totals["tokens"])),
        (f"text tokens{after}", _num(totals["text_tokens"])),
        (f"vision tokens{after}", _num(totals["vision_tokens"])),
        (
            f"vision ratio ({vision['basis'] or '-'})",
            _num(vision["realised"], True)
            + (
                f' <span class="{"ok" if vision["ok"] else "bad"}">(target {_num(vision["target"], True)})</span>'
                if vision["target"] is not None
                else ""
            ),
        ),
    ]
    if report["packing"]:
        cards.append(("padding (pack plan)", _num(report["packing"]["padding_fraction"], True)))
    if report["target"]:
        cards.append(
            (
                "target check",
                '<span class="ok">pass</span>' if report["target"]["ok"] else '<span class="bad">DEVIATION</span>',
            )
        )
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><div class="v">{v}</div><div class="k">{_e(k)}</div></div>' for k, v in cards)
        + "</div>"
    )


def _by_source_table(report: dict[str, Any]) -> str:
    packed = report["packing"] is not None
    targeted = any(r["target_share"] is not None for r in report["by_source"])
    rows = []
    for r in report["by_source"]:
        bad = "bad" if r["ok"] is False else ""
        row = [
            (_e(r["source"]), bad),
            (_num(r["records"]), "n"),
            (_num(r["tokens"]), "n"),
            (_num(r["token_share"], True), "n" if packed else f"n {bad}"),
            (_num(r["vision_ratio"], True), "n"),
        ]
        if packed:
            row.append((_num(r["packed_share"], True), f"n {bad}"))
        if targeted:
            row += [(_num(r["target_share"], True), "n"), (_num(r["deviation"], True), f"n {bad}")]
        rows.append(row)
    headers = ["source", "records", "tokens", f"share after {report['final_step']}", "vision ratio"]
    headers += (["packed share"] if packed else []) + (["target", "deviation"] if targeted else [])
    return _table(headers, rows)


def _target_table(report: dict[str, Any]) -> str:
    target = report["target"]
    if not target:
        return ""
    rows = [
        [
            (_e(c["figure"]), "" if c["ok"] else "bad"),
            (_num(c["target"], True), "n"),
            (_num(c["realised"], True), "n"),
            (_num(c["deviation"], True), "n" if c["ok"] else "n bad"),
            (_num(c["tolerance"], True), "n"),
        ]
        for c in target["checks"]
    ]
    return f'<p class="note">target: {_e(target["path"] or "options")}</p>' + _table(
        ["figure", "target", "realised", "deviation", "tolerance"], rows
    )


def _presets_table(report: dict[str, Any]) -> str:
    if not report["vision_by_preset"]:
        return ""
    rows = [
        [
            (_e(r["preset"]), ""),
            (_e(r["source"]), ""),
            (_e(r["modality"]), ""),
            (_num(r["text_tokens"]), "n"),
            (_num(r["vision_tokens"]), "n"),
            (_num(r["vision_ratio"], True), "n"),
        ]
        for r in preset_rows(report)
    ]
    return '<p class="note">vision tokens by preset (placeholders, without wrapper tokens)</p>' + _table(
        ["preset", "source", "modality", "text tokens", "vision tokens", "vision ratio"], rows
    )


def _mixture_table(report: dict[str, Any]) -> str:
    rows = [
        [
            (_e(r["source"]), ""),
            (_e(r["modality"]), ""),
            (_e(r["language"]), ""),
            (_num(r["records"]), "n"),
            (_num(r["text_bytes"]), "n"),
            (_num(r["media_bytes"]), "n"),
            (_num(r["text_tokens"]), "n"),
            (_num(r["vision_tokens"]), "n"),
            (_num(r["token_share"], True), "n"),
        ]
        for r in report["mixture"]
    ]
    return _table(
        [
            "source",
            "modality",
            "language",
            "records",
            "text bytes",
            "media bytes",
            "text tokens",
            "vision tokens",
            "share",
        ],
        rows,
    )


def _funnel_table(report: dict[str, Any]) -> str:
    steps = funnel_steps(report)
    rows = []
    for group, funnel in report["funnel"].items():
        after = remaining_after_steps(funnel, steps)
        rows.append([(_e(group), ""), (_num(funnel[0]["remaining"]), "n")] + [(_num(n), "n") for n in after])
    detail = [
        [
            (_e(r["step"]), ""),
            (_e(r["stage"]), "bad" if r["status"] == "failed" else ""),
            (_num(r["removed"]) if r["removed"] else "", "n"),
            (_num(r["remaining"]), "n"),
            (_num(r["removed_tokens"]) if r["removed_tokens"] else "", "n"),
        ]
        for r in report["funnel"]["all"]
    ]
    return _table(["source/modality", "input", *[f"after {s}" for s in steps]], rows) + _table(
        ["step", "stage", "removed", "remaining", "removed tokens"], detail
    )


def _reasons_table(report: dict[str, Any]) -> str:
    rows = [
        [
            (_e(r["step"]), ""),
            (_e(r["reason"]), ""),
            (_e(r["status"]), ""),
            (_num(r["records"]), "n"),
            (_num(r["share_of_step_inputs"], True), "n"),
            (_e(", ".join(r["examples"])), ""),
        ]
        for r in report["drop_reasons"]
    ]
    return _table(["step", "reason", "status", "records", "share of step inputs", "example ids"], rows)


def _duplicates_table(duplicates: dict[str, Any]) -> str:
    q = duplicates["size_quantiles"]
    rows = [
        [(_e(k), ""), (v, "n")]
        for k, v in (
            ("clusters", _num(duplicates["clusters"])),
            ("records in clusters", _num(duplicates["records_in_clusters"])),
            ("duplicates removed", _num(duplicates["duplicates"])),
            ("size p50 / p90 / p99 / max", " / ".join(_num(q[k]) for k in ("p50", "p90", "p99", "max"))),
        )
    ]
    if duplicates["similarity"]["count"]:
        rows.append(
            [("similarity p5 / p50", ""), (" / ".join(_quantiles(duplicates["similarity"], ("p5", "p50"))), "n")]
        )
    return _table(["measure", "value"], rows)


def _domains_table(domains: dict[str, Any]) -> str:
    steps = domains["steps"]
    rows = [[(_e(r["domain"]), ""), *((_num(r["records"].get(s)), "n") for s in steps)] for r in domains["rows"]]
    return _table(["domain", *(f"kept after {s}" for s in steps)], rows)


def _quantiles(histogram: dict[str, Any], keys: tuple[str, ...], percent: bool = False) -> list[str]:
    """Quantile cells, each marked when read from bins (see ``APPROXIMATE_NOTE``)."""
    quantiles, mark = histogram.get("quantiles", {}), quantile_mark(histogram)
    return [_e(mark) + _num(quantiles[k], percent) if quantiles.get(k) is not None else "-" for k in keys]


def _distribution_table(report: dict[str, Any]) -> str:
    """Count and quantiles of the final step's kept records, and of every score (kept and rejected)."""
    rows, marked = [], False
    for step, by_status in report["distributions"].items():
        for status in ("kept", "rejected"):
            for metric, hist in by_status[status].items():
                score = metric.startswith("score/")
                if not hist["count"] or (not score and (status == "rejected" or step != report["final_step"])):
                    continue
                label = f"{metric} ({status})" if score else metric
                rows.append(
                    [(_e(step), ""), (_e(label), ""), (_num(hist["count"]), "n")]
                    + [(cell, "n") for cell in _quantiles(hist, ("p5", "p50", "p95"))]
                    + [(_num(hist["max"]), "n")]
                )
                marked = marked or bool(quantile_mark(hist))
    if not rows:
        return ""
    note = f'<p class="note">{_e(APPROXIMATE_FOOTNOTE)}</p>' if marked else ""
    return _table(["step", "metric", "count", "p5", "p50", "p95", "max"], rows) + note


def _distribution_images(report: dict[str, Any]) -> list[str]:
    out = []
    final = report["final_step"]
    if final:
        kept = report["distributions"][final]["kept"]
        panels = [(metric, hist, None) for metric, hist in kept.items() if not metric.startswith("score/")]
        out.append(f'<p class="note">kept records after step {_e(final)}</p>')
        out.append(_image(plots.histograms(panels), "distributions"))
    for step, by_status in report["distributions"].items():
        scores = sorted({m for status in by_status.values() for m in status if m.startswith("score/")})
        panels = [(m[len("score/") :], by_status["kept"].get(m, _EMPTY), by_status["rejected"].get(m)) for m in scores]
        if panels:
            out.append(f'<p class="note">filter scores of step {_e(step)}: kept vs rejected</p>')
            out.append(_image(plots.histograms(panels), f"scores {step}"))
    return out


_EMPTY = {"count": 0, "bins": [], "quantiles": {}, "min": None, "max": None}


def _packing_table(packing: dict[str, Any]) -> str:
    ratio = packing["per_sequence"].get("vision_ratio", {})
    rows = [
        [(_e(k), ""), (v, "n")]
        for k, v in (
            ("sequences", _num(packing["sequences"])),
            ("tokens", _num(packing["tokens"])),
            ("padding", _num(packing["padding_fraction"], True)),
            ("efficiency", _num(packing["efficiency"], True)),
            ("vision ratio (global)", _num(packing["vision_ratio"], True)),
            ("per-sequence vision ratio p5 / p50 / p95", " / ".join(_quantiles(ratio, ("p5", "p50", "p95"), True))),
            ("zero-vision sequences", _num(packing["zero_vision_share"], True)),
            (
                f"within ±{packing['band'] * 100:.0f} pp of {band_target_label(packing)}",
                _num(packing["within_band_share"], True),
            ),
            ("split documents", _num(packing["split_documents"])),
        )
    ]
    return _table(["measure", "value"], rows)


def _sft_table(sft: dict[str, Any]) -> str:
    rows = []
    for total in sft["splits"]:
        for r in [r for r in sft["by_source"] if r["split"] == total["split"]] + [{**total, "source": "all"}]:
            rows.append(
                [
                    (_e(r["split"]), ""),
                    (_e(r["source"]), ""),
                    (_num(r["conversations"]), "n"),
                    (_num(r["rows"]), "n"),
                    (_num(r["tokens"]), "n"),
                    (_num(r.get("token_share", 1.0), True), "n"),
                    (_num(r["tool_use_share"], True), "n"),
                ]
            )
    return '<p class="note">a row per copy the mixture repeats; tokens of every row</p>' + _table(
        ["split", "source", "conversations", "rows", "tokens", "share", "tool use"], rows
    )


def _rft_table(rft: dict[str, Any]) -> str:
    rows = [
        [
            (_e(r["task"]), ""),
            (_num(r["prompts"]), "n"),
            (_num(r["samples"]), "n"),
            (_num(r["passed"]), "n"),
            (_num(r["pass_rate"], True), "n"),
            (_num(r["accepted"]), "n"),
        ]
        for r in rft["by_task"]
    ]
    buckets = ", ".join(f"{b['bucket']} {b['prompts']:,}" for b in rft["buckets"])
    statuses = ", ".join(f"{s['status']} {s['samples']:,}" for s in rft["by_status"])
    note = (
        f"{rft['prompts']:,} prompts, mean pass rate {_num(rft['mean_pass_rate'], True)}; buckets: "
        f"{buckets or '-'}; samples: {statuses or '-'} ({rft['accepted']:,} accepted); tokens: "
        f"{rft['prompt_tokens']:,} prompt, {rft['completion_tokens']:,} completion"
    )
    return f'<p class="note">{_e(note)}</p>' + _table(
        ["task", "prompts", "samples", "passed", "pass rate", "accepted"], rows
    )


def _compare_table(compare: dict[str, Any]) -> str:
    rows = [
        [
            (_e(r["figure"]), ""),
            (_num(r["this"]), "n"),
            (_num(r["other"]), "n"),
            (_num(r["delta"]), "n bad" if (r["delta"] or 0) < 0 else "n"),
            (_num(r["relative"], True), "n"),
        ]
        for r in compare["rows"]
    ]
    other = ", ".join(i["path"] for i in compare["other"]["inputs"])
    return f'<p class="note">other: {_e(other)}</p>' + _table(["figure", "this", "other", "delta", "relative"], rows)
