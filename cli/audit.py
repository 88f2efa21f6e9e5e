"""``fusionforge audit``."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fusionforge.cli.options import executor_options, library_errors, ranged
from fusionforge.cli.render import console
from fusionforge.pipelines.core.bounds import FRACTION, POSITIVE_FRACTION, SEED
from fusionforge.pipelines.core.progress import PLAN, UNIT
from fusionforge.pipelines.core.settings import build_config

DEVIATION_EXIT_CODE = 3


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON (stable schema) instead of tables.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write a self-contained HTML report with plots to this file.",
)
@click.option(
    "--compare",
    "compare_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Audit this output too and show both side by side with deltas (repeat for several parts).",
)
@click.option(
    "--target",
    "target_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The mixture YAML of pack --mixture (plus optional vision_ratio, tolerance) to check against.",
)
@click.option(
    "--vision-ratio", type=ranged(FRACTION), default=None, help="Target vision-token ratio (overrides the YAML)."
)
@click.option(
    "--tolerance",
    type=ranged(FRACTION),
    default=None,
    help="Allowed |realised - target| of a source's token share (default 0.02, or the YAML's).",
)
@click.option(
    "--vision-tolerance",
    type=ranged(FRACTION),
    default=None,
    help="Allowed |realised - target| of the vision ratio (default 0.01, or the YAML's).",
)
@click.option(
    "--fail-on-deviation",
    is_flag=True,
    help=f"Exit with status {DEVIATION_EXIT_CODE} when a figure is outside its tolerance (for CI).",
)
@click.option(
    "--sample",
    type=ranged(POSITIVE_FRACTION),
    default=None,
    help="Read only this fraction of each file's row groups (faster; the report says it is an estimate).",
)
@click.option(
    "--seed", type=ranged(SEED), default=0, show_default=True, help="Seed of --sample's choice of row groups."
)
@click.option("--upstream", is_flag=True, help="Also audit the outputs these were made from (their config's input).")
@click.option(
    "--vision-preset",
    "vision_presets",
    multiple=True,
    metavar="NAME",
    help="Count vision tokens with this preset (qwen2-vl, kimi-k25, kimi-vl, llava-onevision); repeat "
    "to compare presets, the first one drives the mixture. Default: the records' counts, else an "
    "estimate.",
)
@executor_options
@library_errors
def audit(paths, as_json, html_path, compare_paths, target_path, fail_on_deviation, vision_presets, **options):
    """Mixture statistics of fusionforge outputs: tables, JSON and an HTML report with plots.

    Each PATH is an output folder (shard, dedupe, filter, pack), or a Parquet file of one (manifest,
    ledger, rejected/, clusters, pack plan). Several PATHs of one step add up (parts of a corpus);
    PATHs of chained steps give the funnel. Figures are exact unless --sample is given.

    \b
    Exit status: 0 ok, 1 the run failed, 2 a usage or configuration error, 3 a deviation beyond
    tolerance (with --fail-on-deviation).

    \b
    Example:
      fusionforge audit out/ dedup/ clean/ packed/ --html report.html
      fusionforge audit clean/ --target mix.yaml --fail-on-deviation --json
      fusionforge audit clean/ --compare dedup/
      fusionforge audit clean/ --vision-preset kimi-k25 --vision-preset qwen2-vl
    """
    from fusionforge.mixers.audit import AuditOptions, compare_reports, load_target
    from fusionforge.mixers.audit.terminal import render

    target = load_target(target_path, options["vision_ratio"], options["tolerance"], options["vision_tolerance"])
    reading = build_config(AuditOptions, {**options, "vision_presets": tuple(vision_presets)})
    report = _run(paths, reading, target, "audit")
    if compare_paths:
        report = compare_reports(report, _run(compare_paths, reading, None, "audit --compare"))
    if html_path:
        from fusionforge.mixers.audit.html import write_html

        written = write_html(report, html_path)
        console.print(f"HTML report: {written}")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        Console(width=None if sys.stdout.isatty() else 160).print(render(report))
    if fail_on_deviation and report["target"] and not report["target"]["ok"]:
        failed = [c["figure"] for c in report["target"]["checks"] if not c["ok"]]
        console.print(f"[bold red]deviation beyond tolerance:[/] {', '.join(failed)}")
        sys.exit(DEVIATION_EXIT_CODE)


def _run(paths, options, target, label: str) -> dict:
    from fusionforge.mixers.audit import run_audit

    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def count_rows(event: str, data: dict) -> None:
            if event == PLAN:
                progress.update(task, total=data["total"])
            elif event == UNIT:
                progress.advance(task, data["rows"])

        return run_audit(list(paths), options, target, count_rows)
