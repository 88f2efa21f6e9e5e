"""``fusionforge demo``: build the sample corpus and run every step on it (steps in the modules beside)."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console

from fusionforge.cli.demo.audit import audit_step
from fusionforge.cli.demo.posttraining import rft_step, sft_step
from fusionforge.cli.demo.pretraining import dedupe_step, filter_step, pack_step, semantic_step, shard_step
from fusionforge.cli.demo.training import train_tokenizer, training_step
from fusionforge.cli.options import executor_options, library_errors, ranged
from fusionforge.pipelines.core.bounds import SEED


@click.command()
@click.option(
    "-o",
    "--output",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the corpus (raw/) and every stage's output.",
)
@click.option("--seed", type=ranged(SEED), default=0, show_default=True, help="Seed of the generated corpus.")
@executor_options
@library_errors
def demo(output, seed, **options):
    """Generate a small multimodal corpus (with planted duplicates and broken files) and process it.

    Nothing is downloaded: texts in four languages, Pillow drawings, ffmpeg test videos, a
    legacy WebDataset tar and a small web crawl (a WARC) are made on the spot, the tokenizer is
    trained on the filtered texts and the demo ends with one training step of a tiny random-weight
    Kimi K2.5 on the packed output.
    The output folder is replaced on every run.

    \b
    Example:
      fusionforge demo -o demo-out/
    """
    import dataclasses
    import shutil

    from fusionforge.pipelines.core.settings import RunSettings, build_config
    from fusionforge.pipelines.demo_corpus import make_corpus

    out = Path(output)
    if out.exists():
        shutil.rmtree(out)
    console = Console()
    started = time.monotonic()
    inputs = make_corpus(out / "raw", seed=seed)
    console.print(
        f"[bold]corpus[/] {len(inputs)} sources generated under {out / 'raw'} ({time.monotonic() - started:.1f} s)"
    )
    run = build_config(RunSettings, options)
    seeded = dataclasses.replace(run, seed=seed)  # the steps that take the demo's seed; the others keep 0
    shards = shard_step(console, inputs, out, seeded)
    deduplicated = dedupe_step(console, out, shards, run)
    semantic_step(console, out, deduplicated, run)
    filtered = filter_step(console, deduplicated, str(out / "filtered"), run)
    tokenizer = train_tokenizer(filtered, out / "tokenizer")
    packed = pack_step(console, out, filtered, seeded, tokenizer)
    sft_step(out, shards, seeded, console)
    rft_step(console, out, seed)
    audit_step(out, console, run)
    training_step(console, packed, tokenizer, seed)
    console.print(f"[bold]demo finished[/] in {time.monotonic() - started:.1f} s; outputs under {out}/")
