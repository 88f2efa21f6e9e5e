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
    deduplicated = _dedupe_step(console, out, cfg.output, executor, ray_address, num_cpus)
    _filter_step(console, deduplicated, str(out / "filtered"), executor, ray_address, num_cpus)
    _pack_step(console, out, str(out / "filtered"), executor, ray_address, num_cpus, seed)
    _sft_step(out, cfg.output, seed, executor, ray_address, num_cpus, console)
    _rft_step(console, out, seed)
    audit_step(out, console, executor, ray_address, num_cpus)
    console.print(f"[bold]demo finished[/] in {time.monotonic() - started:.1f} s; outputs under {out}/")


def _by_source(report: dict) -> Table:
    table = Table(title="records by source and modality", header_style="bold")
    for column in ("source/modality", "kept", "dropped", "failed"):
        table.add_column(column, justify="left" if column == "source/modality" else "right")
    for group, counts in report["by_source_modality"].items():
        table.add_row(group, str(counts["kept"]), str(counts["dropped"]), str(counts["failed"]))
    return table


# --- dedupe step (issue 3): exact and near duplicates of the shard step's output (filter reads it) ------
def _dedupe_step(console: Console, out: Path, previous: str, executor: str, ray_address: str | None,
                 num_cpus: int | None) -> str:
    """Remove exact and near duplicates (text, images, video) from the previous step's output."""
    from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe

    cfg = DedupeConfig(input=previous, output=str(out / "dedup"), shard_count=100, executor=executor,
                       ray_address=ray_address, num_cpus=num_cpus)
    with partition_progress("dedupe") as (on_plan, on_partition):
        report = run_dedupe(cfg, on_plan=on_plan, on_partition=on_partition)
    stats = report["dedupe"]
    table = Table(title=f"dedupe -> {cfg.output} ({stats['seconds_total']:.1f} s)", header_style="bold")
    for column in ("space", "items", "clusters", "exact dropped", "near dropped"):
        table.add_column(column, justify="left" if column == "space" else "right")
    for space in ("text", "image", "video"):
        table.add_row(space, str(stats["items"].get(space, 0)), str(stats[f"{space}_clusters"]),
                      str(stats[f"{space}_exact_dropped"]), str(stats[f"{space}_near_dropped"]))
    console.print(table)
    console.print(f"kept {report['kept']} of {report['inputs']} records; clusters in {cfg.output}/clusters.parquet")
    return cfg.output


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


# --- rft step (issue 8): rejection sampling against a local tiny model, a plumbing demonstration ---------
def _rft_step(console: Console, out: Path, seed: int) -> None:
    """Build a random-weight 2-layer model, serve it with `transformers serve`, run a small RFT loop on it.

    It does not read the previous steps' output (RFT starts from prompts with verifiable answers):
    it shows the loop's plumbing (sampling k answers, verifying, rounds, buckets, outputs) end to end.
    """
    import json

    from fusionforge.cli.rft import summary_table as rft_table
    from fusionforge.rft.clients import OpenAIClient, Sampling
    from fusionforge.rft.loop import RFTConfig, run_rft
    from fusionforge.rft.serve import TransformersServer, sampling_body
    from fusionforge.rft.tiny_model import build_tiny_model

    started = time.monotonic()
    folder = out / "rft"
    model = build_tiny_model(folder / "model", seed=seed)
    prompts = folder / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"sum-{a}-{b}", "question": f"What is {a} + {b} ?", "answer": a + b,
                                           "task": "numeric"}) + "\n" for a, b in ((1, 2), (2, 2), (3, 1), (4, 4))))
    with TransformersServer(model) as server:
        cfg = RFTConfig(prompts=str(prompts), output=str(folder / "out"), k=4, rounds=2, round_k_factor=1.5,
                        accept="all", seed=seed,
                        sampling=Sampling(temperature=1.0, max_tokens=24, extra_body=sampling_body(model)))
        report = run_rft(cfg, OpenAIClient(server.url, str(model), concurrency=4))
    console.print(rft_table(report, f"rft -> {cfg.output} (PLUMBING DEMONSTRATION: a random-weight 2-layer model "
                                    f"served by transformers serve; its answers are noise)"))
    console.print(f"[bold]rft[/] model built, served, sampled and verified in {time.monotonic() - started:.1f} s")


# --- audit step (issue 6): every output above, audited; the HTML report's path printed -------------
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
    report = run_audit(outputs, options, Target(vision_ratio=DEMO_VISION_RATIO))
    console.print(short_summary(report))
    path = write_html(report, out / "audit.html").resolve()
    console.print(f"[bold]audit report[/] {path}")
    return path
# --- filter step (issue 4): quality filters over the previous step's output -----------------------------------

DEMO_FILTERS = """
filters:
  - text_lang_id_v1                      # py3langid's bundled model: works offline
  - stage: text_gopher_quality_v1
    languages: [en]                      # Gopher's stop words are English
    min_words: 30                        # the demo documents are short
  - text_gopher_repetition_v1
  - stage: text_c4_lines_v1
    min_sentences: 3
  - text_fineweb_quality_v1
  - image_checks_v1
  - video_probe_v1
  - video_scenes_v1                      # the 3-scene clip becomes 3 clip records
  - video_motion_v1                      # static test patterns are dropped
  - video_frames_v1                      # 2 fps, chunks of 4 frames (Kimi K2.5's temporal unit)
"""


def _filter_step(console: Console, input_dir: str, output_dir: str, executor: str, ray_address, num_cpus) -> None:
    """Run the quality filters on the demo's shards and print drops per reason per source."""
    import yaml
    from fusionforge.pipelines.filter_config import parse_filters
    from fusionforge.pipelines.quality import QualityConfig, run_quality
    from fusionforge.pipelines.transform import TransformConfig

    console.print("[yellow]skipped[/] CLIP image-text and keyframe scores: no CLIP weights are available offline "
                  "(give a local checkpoint: fusionforge filter --clip-pretrained PATH)")
    console.print("[yellow]skipped[/] fastText quality score: no quality model is available offline "
                  "(train one: fusionforge filters train-fasttext hq=good.jsonl lq=bad.jsonl -o q.bin)")
    cfg = QualityConfig(TransformConfig(input=input_dir, output=output_dir, shard_count=100, executor=executor,
                                        ray_address=ray_address, num_cpus=num_cpus),
                        tuple(parse_filters(yaml.safe_load(DEMO_FILTERS), "demo filters")))
    with partition_progress("filter") as (on_plan, on_partition):
        report = run_quality(cfg, on_partition=on_partition, on_plan=on_plan)
    table = Table(title=f"filter -> {output_dir} (language ID: {report['language_detector']})", header_style="bold")
    for column in ("source", "reason", "records"):
        table.add_column(column, justify="right" if column == "records" else "left")
    for source, reasons in report["reasons_by_source"].items():
        for reason, count in reasons.items():
            table.add_row(source, reason, str(count))
    table.add_row("all", "kept", str(report["kept"]))
    table.add_row("all", "derived (scene clips)", str(report["derived"]))
    console.print(table)

