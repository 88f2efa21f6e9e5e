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
    _pack_step(console, out, cfg.output, executor, ray_address, num_cpus, seed)
    _sft_step(out, cfg.output, seed, executor, ray_address, num_cpus, console)
    console.print(f"[bold]demo finished[/] in {time.monotonic() - started:.1f} s; outputs under {out}/")


def _by_source(report: dict) -> Table:
    table = Table(title="records by source and modality", header_style="bold")
    for column in ("source/modality", "kept", "dropped", "failed"):
        table.add_column(column, justify="left" if column == "source/modality" else "right")
    for group, counts in report["by_source_modality"].items():
        table.add_row(group, str(counts["kept"]), str(counts["dropped"]), str(counts["failed"]))
    return table


# --- pack step (issue 5): the previous step's output packed at 10% vision ---------------------------
def _pack_step(console: Console, out: Path, previous: str, executor, ray_address, num_cpus, seed: int) -> None:
    """Pack the previous step's output into 2,048-token sequences at 10% vision (kimi-k25 tokens)."""
    from fusionforge.mixers.pack_job import PackConfig, run_pack

    cfg = PackConfig(input=previous, output=str(out / "packed"), seq_len=2048, vision_ratio=0.10, window=8,
                     seed=seed, executor=executor, ray_address=ray_address, num_cpus=num_cpus)
    report = run_pack(cfg)
    table = Table(title=f"pack -> {cfg.output} (L=2048, r=10%, kimi-k25; text tokens estimated)",
                  header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    ratio = report["per_sequence_ratio"]
    table.add_row("sequences", f"{report['sequences']:,}")
    table.add_row("padding", f"{report['padding_fraction']:.2%}")
    table.add_row("vision ratio (global)", f"{report['global_vision_ratio']:.2%}")
    table.add_row("worst window error", f"{report['window_ratio_error_max']:.2%}")
    table.add_row("per-sequence p5 / p95", f"{ratio['p5']:.1%} / {ratio['p95']:.1%}")
    table.add_row("zero-vision sequences", f"{report['zero_vision_share']:.1%}")
    table.add_row("kept / surplus records", f"{report['kept']:,} / {report['reasons'].get('pack:surplus', 0):,}")
    console.print(table)


# ---- zero-vision SFT step (issue 7): the shard output's photos and drawn charts -> verified trajectories -> SFT set
def _sft_step(out: Path, shard_dir: str, seed: int, executor: str, ray_address, num_cpus, console: Console) -> None:
    """Questions about the shard step's photos (answers from their metadata) plus generated images go through
    the sandboxed python tool; the verified trajectories join generated chats in a zero-vision SFT set."""
    from fusionforge.mixers.sft.build import BuildConfig, run_build
    from fusionforge.mixers.sft.sample_data import make_chat_corpus, questions_from_shards
    from fusionforge.mixers.sft.synth_job import SynthConfig, run_synth

    started = time.monotonic()
    photo_qa = questions_from_shards(shard_dir, out / "raw" / "photo_qa")
    run = {"executor": executor, "ray_address": ray_address, "num_cpus": num_cpus, "seed": seed}
    synth = run_synth(SynthConfig(inputs=(f"photos={photo_qa}",) if photo_qa else (), output=str(out / "sft_proxy"),
                                  generate=8, **run))
    chats, evals = make_chat_corpus(out / "raw" / "chats", seed=seed, n=40)
    inputs = (*(f"{k}={v}" for k, v in chats.items()), f"proxy={out / 'sft_proxy' / 'trajectories.jsonl'}")
    report = run_build(BuildConfig(inputs=inputs, output=str(out / "sft"), decontaminate=(f"eval={evals}",),
                                   val_fraction=0.05, **run))
    table = Table(title=f"zero-vision SFT -> {out / 'sft'} ({time.monotonic() - started:.1f} s)", header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("trajectories kept / questions", f"{synth['kept']} / {synth['inputs']}")
    for reason, count in synth["reasons"].items():
        table.add_row(f"  {reason}", str(count))
    table.add_row("conversations in / train / val",
                  f"{report['inputs']} / {report['splits']['train']['conversations']} / "
                  f"{report['splits']['val']['conversations']}")
    for reason, count in report["reasons"].items():
        table.add_row(f"  {reason}", str(count))
    table.add_row("tool-use share", f"{report['tool_use_share']['conversations']:.0%}")
    table.add_row("vision check", report["vision"]["check"].split(" in ")[0])
    console.print(table)
