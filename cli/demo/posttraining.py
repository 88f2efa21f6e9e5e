"""The demo's post-training steps: a zero-vision SFT set and a rejection-sampling run (plumbing only)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fusionforge.pipelines.core.settings import RunSettings


def sft_step(out: Path, shard_dir: str, run: RunSettings, console: Console) -> None:
    """Questions about the shard step's photos (answers from their metadata) plus generated images go through
    the sandboxed python tool; the verified trajectories join generated chats in a zero-vision SFT set."""
    from fusionforge.mixers.sft.build import run_build
    from fusionforge.mixers.sft.config import BuildConfig
    from fusionforge.mixers.sft.sample_data import make_chat_corpus, questions_from_shards
    from fusionforge.mixers.sft.synth_job import SynthConfig, run_synth

    started = time.monotonic()
    photo_qa = questions_from_shards(shard_dir, out / "raw" / "photo_qa")
    synth = run_synth(
        SynthConfig(
            inputs=(f"photos={photo_qa}",) if photo_qa else (), output=str(out / "sft_proxy"), generate=8, run=run
        )
    )
    chats, evals = make_chat_corpus(out / "raw" / "chats", seed=run.seed, n=40)
    inputs = (*(f"{k}={v}" for k, v in chats.items()), f"proxy={out / 'sft_proxy' / 'trajectories.jsonl'}")
    report = run_build(
        BuildConfig(
            inputs=inputs, output=str(out / "sft"), decontaminate=(f"eval={evals}",), val_fraction=0.05, run=run
        )
    )
    table = Table(title=f"zero-vision SFT -> {out / 'sft'} ({time.monotonic() - started:.1f} s)", header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("trajectories kept / questions", f"{synth['kept']} / {synth['inputs']}")
    table.add_row("sandbox network", str(synth["sandbox"]["network"]))
    for reason, count in synth["reasons"].items():
        table.add_row(f"  {reason}", str(count))
    table.add_row(
        "conversations in / train / val",
        f"{report['inputs']} / {report['splits']['train']['conversations']} / "
        f"{report['splits']['val']['conversations']}",
    )
    for reason, count in report["reasons"].items():
        table.add_row(f"  {reason}", str(count))
    table.add_row("tool-use share", f"{report['tool_use_share']['conversations']:.0%}")
    table.add_row("vision check", report["vision"]["check"].split(" in ")[0])
    console.print(table)


def rft_step(console: Console, out: Path, seed: int) -> None:
    """Build a random-weight 2-layer model, serve it with `transformers serve`, run a small RFT loop on it.

    It does not read the previous steps' output (RFT starts from prompts with verifiable answers):
    it shows the loop's plumbing (sampling k answers, verifying, rounds, buckets, outputs) end to end.
    """
    import json

    from fusionforge.cli.rft import summary_table as rft_table
    from fusionforge.rft.clients import OpenAIClient, Sampling
    from fusionforge.rft.config import RFTConfig
    from fusionforge.rft.loop import run_rft
    from fusionforge.rft.serve import TransformersServer, sampling_body
    from fusionforge.rft.tiny_model import build_tiny_model

    started = time.monotonic()
    folder = out / "rft"
    model = build_tiny_model(folder / "model", seed=seed)
    prompts = folder / "prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"id": f"sum-{a}-{b}", "question": f"What is {a} + {b} ?", "answer": a + b, "task": "numeric"})
            + "\n"
            for a, b in ((1, 2), (2, 2), (3, 1), (4, 4))
        )
    )
    with TransformersServer(model) as server:
        cfg = RFTConfig(
            prompts=str(prompts),
            output=str(folder / "out"),
            k=4,
            rounds=2,
            round_k_factor=1.5,
            accept="all",
            run=RunSettings(seed=seed),
            sampling=Sampling(temperature=1.0, max_tokens=24, extra_body=sampling_body(model)),
        )
        report = run_rft(cfg, OpenAIClient(server.url, str(model), concurrency=4))
    console.print(
        rft_table(
            report,
            f"rft -> {cfg.output} (PLUMBING DEMONSTRATION: a random-weight 2-layer model "
            f"served by transformers serve; its answers are noise)",
        )
    )
    console.print(f"[bold]rft[/] model built, served, sampled and verified in {time.monotonic() - started:.1f} s")
