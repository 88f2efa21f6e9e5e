"""``fusionforge demo``: build the sample corpus and run the main job on it."""

from __future__ import annotations

import time
from pathlib import Path

import click
from fusionforge.cli.options import executor_options, library_errors
from fusionforge.cli.render import partition_progress, summary_table
from rich.console import Console
from rich.table import Table


@click.command()
@click.option("-o", "--output", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the corpus (raw/) and every stage's output.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated corpus.")
@executor_options
@library_errors
def demo(output, seed, executor, ray_address, num_cpus):
    """Generate a small multimodal corpus (with planted duplicates and broken files) and process it.

    Nothing is downloaded: texts in four languages, Pillow drawings, ffmpeg test videos and a
    legacy WebDataset tar are made on the spot. The output folder is replaced on every run.

    \b
    Example:
      fusionforge demo -o demo-out/
    """
    import shutil

    from fusionforge.pipelines.demo_corpus import make_corpus
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    out = Path(output)
    if out.exists():
        shutil.rmtree(out)
    console = Console()
    started = time.monotonic()
    inputs = make_corpus(out / "raw", seed=seed)
    console.print(f"[bold]corpus[/] {len(inputs)} sources generated under {out / 'raw'} "
                  f"({time.monotonic() - started:.1f} s)")
    cfg = ShardConfig(inputs=tuple(f"{name}={path}" for name, path in inputs.items()), output=str(out / "shards"),
                      shard_count=100, seed=seed, executor=executor, ray_address=ray_address, num_cpus=num_cpus)
    with partition_progress("shard") as (on_plan, on_partition):
        report = run_shard(cfg, on_partition=on_partition, on_plan=on_plan)
    console.print(summary_table(report, f"shard -> {cfg.output}"))
    console.print(_by_source(report))
    audit_step(out, console, executor, ray_address, num_cpus)
    console.print(f"[bold]demo finished[/] in {time.monotonic() - started:.1f} s; outputs under {out}/")


def _by_source(report: dict) -> Table:
    table = Table(title="records by source and modality", header_style="bold")
    for column in ("source/modality", "kept", "dropped", "failed"):
        table.add_column(column, justify="left" if column == "source/modality" else "right")
    for group, counts in report["by_source_modality"].items():
        table.add_row(group, str(counts["kept"]), str(counts["dropped"]), str(counts["failed"]))
    return table


DEMO_VISION_RATIO = 0.10


def audit_step(out: Path, console: Console, executor: str = "local", ray_address: str | None = None,
               num_cpus: int | None = None) -> Path:
    """Last step: audit every stage output under ``out`` and write the HTML report; return its path.

    The target is Kimi K2.5's vision-token share of about 10%, so the report shows how far each
    stage's output is from it.
    """
    from fusionforge.mixers.audit import AuditOptions, Target, run_audit
    from fusionforge.mixers.audit.discover import is_output
    from fusionforge.mixers.audit.terminal import short_summary
    from fusionforge.mixers.report import write_html

    outputs = [str(p) for p in sorted(out.iterdir()) if p.is_dir() and is_output(p)]
    options = AuditOptions(executor=executor, ray_address=ray_address, num_cpus=num_cpus)
    report = run_audit(outputs, options, Target(shares={}, closed=False, vision_ratio=DEMO_VISION_RATIO))
    console.print(short_summary(report))
    path = write_html(report, out / "audit.html").resolve()
    console.print(f"[bold]audit report[/] {path}")
    return path
