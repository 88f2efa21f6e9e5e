"""Terminal output shared by commands: progress bars and the summary table of a report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fusionforge.pipelines.core.progress import PHASE, PLAN, UNIT
from fusionforge.pipelines.core.progress import Progress as ProgressListener

console = Console(stderr=True)


@contextmanager
def partition_progress(description: str, log_phases: bool = False) -> Iterator[ProgressListener]:
    """Yields a ``progress`` listener: a bar over a step's units of work (phases logged too, if asked)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def listen(event: str, data: dict[str, Any]) -> None:
            if event == PLAN:
                progress.update(task, total=data["total"], completed=data["done"])
            elif event == UNIT:
                progress.advance(task)
            elif event == PHASE and log_phases:
                console.log(f"{description}: {data['name']}")

        yield listen


def print_report(report: dict[str, Any], as_json: bool, title: str) -> None:
    """The report as JSON on stdout, or as a summary table."""
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    Console().print(summary_table(report, title))


def summary_table(report: dict[str, Any], title: str) -> Table:
    """Inputs, kept, dropped and failed by reason, shards, bytes and time."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, key in (("inputs", "inputs"), ("kept", "kept"), ("dropped", "dropped"), ("failed", "failed")):
        table.add_row(label, f"{report.get(key, 0):,}")
        if key == "inputs" and report.get("derived"):
            table.add_row("derived (e.g. scene clips)", f"{report['derived']:,}")
    for reason, count in report.get("reasons", {}).items():
        table.add_row(f"  {reason}", f"{count:,}")
    for note in report.get("skipped_inputs", []):
        table.add_row(f"not read: {note['source']}, {note['what']}", f"{note['files']:,} files")
    if "shards" in report:
        table.add_row("shards", f"{report['shards']:,}")
        table.add_row("shard bytes", _human_bytes(report.get("shard_bytes", 0)))
    table.add_row("time", f"{report.get('seconds', 0):.1f} s")
    executor = report.get("executor")
    if isinstance(executor, dict):
        table.add_row("executor", f"{executor['chosen']} ({executor['reason']})")
    return table


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


def print_sandbox(summary: dict[str, Any], what: str, out: Console = console) -> None:
    """One line on the isolation the sandboxed code really got; a warning for any weaker mode."""
    runs = summary["runs_by_mode"]
    total = sum(runs.values())
    total = f" [{total} run{'' if total == 1 else 's'}]" if len(runs) == 1 else ""
    out.print(f"{what} isolation: {summary['isolation']}{total}", highlight=False)
    if summary.get("warning"):
        out.print(f"[bold yellow]warning:[/] {summary['warning']}.", highlight=False)
