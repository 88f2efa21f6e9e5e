"""``fusionforge sft``: zero-vision SFT sets (``build``) and vision-through-code trajectories."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from fusionforge.cli.options import CONTEXT_SETTINGS, executor_options, library_errors, ranged, run_options
from fusionforge.cli.render import partition_progress, print_sandbox, summary_table
from fusionforge.mixers.sft.synth_images import TASKS
from fusionforge.mixers.sft.tool_schema import SCHEMA_DIALECTS
from fusionforge.pipelines.core.bounds import COUNT, FRACTION, NON_NEGATIVE_INT, POSITIVE, PROPER_FRACTION
from fusionforge.pipelines.core.sandbox import SANDBOX_MEMORY_MB, SANDBOX_PROCESSES
from fusionforge.pipelines.core.settings import build_config

MIXTURE_EXAMPLE = "sources: {chat: {proportion: 0.7}, proxy: {proportion: 0.3, max_epochs: 4}}"


@click.group(context_settings=CONTEXT_SETTINGS)
def sft() -> None:
    """Build text-only SFT sets that still teach visual tool use.

    \b
    Example:
      fusionforge sft synth-vision-proxy --generate 200 -o proxy/
      fusionforge sft build chat=chats.jsonl proxy=proxy/trajectories.jsonl -o sft/ --decontaminate gsm8k=test.jsonl
    """


@sft.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--mixture",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML with each source's share of training tokens: per source one of proportion, repeat or "
    f"choose, optionally max_epochs (the format pack reads), e.g. '{MIXTURE_EXAMPLE}'.",
)
@click.option(
    "--decontaminate",
    "evals",
    multiple=True,
    metavar="[NAME=]EVAL",
    help="Eval file(s) (JSONL/Parquet); conversations sharing an n-gram with them are removed. Repeatable.",
)
@click.option("--ngram", type=ranged(COUNT), default=13, show_default=True, help="Decontamination n-gram size (words).")
@click.option(
    "--tokenizer",
    type=click.Path(exists=True),
    help="tokenizer.json or a tokenizer folder (a chat template in it is used). Default: an estimate "
    "(characters/4, labelled so in the report).",
)
@click.option(
    "--max-tokens",
    type=ranged(COUNT),
    default=None,
    help="Reject conversations longer than this many tokens, as counted by --tokenizer (required).",
)
@click.option(
    "--val-fraction",
    type=ranged(PROPER_FRACTION),
    default=0.01,
    show_default=True,
    help="Share of conversations held out for validation (by content hash).",
)
@click.option(
    "--strip-vision",
    is_flag=True,
    help="Remove vision parts and keep the sample (marked meta.vision_stripped) instead of rejecting it.",
)
@click.option(
    "--vision-placeholders",
    default=None,
    metavar="TOKENS",
    help="Comma-separated placeholder tokens that count as vision (replaces the default list).",
)
@click.option(
    "--near-dup-threshold",
    type=ranged(FRACTION),
    default=0.8,
    show_default=True,
    help="Jaccard threshold for near-duplicate user turns (0: exact duplicates only).",
)
@click.option(
    "--partition-mb",
    type=ranged(POSITIVE),
    default=64.0,
    show_default=True,
    help="Input bytes per unit of work (and of resume).",
)
@click.option(
    "--schema-dialect",
    type=click.Choice(SCHEMA_DIALECTS),
    default="lenient",
    show_default=True,
    help="'lenient': map the type names public tool-calling sets use (float, dict, tuple, any, xLAM's "
    "'str, optional') to JSON Schema before validating, counted in the report; 'strict': tool schemas must "
    "already be JSON Schema.",
)
@executor_options
@run_options
@library_errors
def build(inputs, evals, vision_placeholders, near_dup_threshold, as_json, **options):
    """Validate, dedupe, decontaminate, mix and split chat data into a zero-vision SFT set.

    Each INPUT is PATH or NAME=PATH: JSONL (optionally compressed) or Parquet with OpenAI
    `messages` (tool_calls, tool turns, `tools` schemas), ShareGPT `conversations` or Alpaca
    `instruction`/`input`/`output` rows, detected per row. Writes train/val as OpenAI-messages
    JSONL and Parquet, rejected.jsonl (each with its reason), decontamination.jsonl, ledger.parquet
    and report.json, which ends with the vision check of the written files ("0 vision parts").

    \b
    Example:
      fusionforge sft build chat=chats.jsonl tools=tool_calls.parquet -o sft/ --tokenizer tok/ \\
          --max-tokens 8192 --decontaminate gsm8k=gsm8k_test.jsonl --mixture sft_mix.yaml
    """
    from fusionforge.mixers.sft.build import run_build
    from fusionforge.mixers.sft.config import BuildConfig
    from fusionforge.mixers.sft.vision import DEFAULT_PLACEHOLDERS

    placeholders = (
        tuple(t.strip() for t in vision_placeholders.split(",") if t.strip())
        if vision_placeholders is not None
        else DEFAULT_PLACEHOLDERS
    )
    given = {
        "inputs": tuple(inputs),
        "decontaminate": tuple(evals),
        "vision_placeholders": placeholders,
        "near_dup_threshold": near_dup_threshold or None,
    }
    cfg = build_config(BuildConfig, {**options, **given})
    with partition_progress("sft build") as progress:
        report = run_build(cfg, progress)
    _print(report, as_json, f"fusionforge sft build -> {cfg.output}", build_table(report))


@sft.command("synth-vision-proxy")
@click.argument("inputs", nargs=-1)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--generate",
    "n_generate",
    type=ranged(NON_NEGATIVE_INT),
    default=0,
    show_default=True,
    help="Also draw this many synthetic images with known answers (Pillow) and use them.",
)
@click.option(
    "--tasks",
    default=",".join(TASKS),
    show_default=True,
    help="Tasks of the generated images, comma-separated.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=ranged(POSITIVE),
    default=10.0,
    show_default=True,
    help="Wall-clock seconds per code cell; the sandbox is killed past it.",
)
@click.option(
    "--memory-mb",
    type=ranged(SANDBOX_MEMORY_MB),
    default=512,
    show_default=True,
    help="Memory of a sandbox session, all its processes together.",
)
@click.option(
    "--max-processes",
    type=ranged(SANDBOX_PROCESSES),
    default=32,
    show_default=True,
    help="Processes and threads of a sandbox session, all together.",
)
@click.option(
    "--allow-unsandboxed",
    is_flag=True,
    help="Where this machine cannot isolate code (no bubblewrap or no user namespaces), run it anyway, "
    "WITHOUT isolation (it could read your files and reach the network). Without this flag the "
    "step refuses. The isolation used is reported.",
)
@click.option(
    "--partition-kb",
    type=ranged(POSITIVE),
    default=4.0,
    show_default=True,
    help="QA input bytes per unit of work (about a dozen rows): sandbox sessions spread over the workers.",
)
@executor_options
@run_options
@library_errors
def synth_vision_proxy(inputs, n_generate, tasks, as_json, **options):
    """Turn image questions with known answers into verified, pixel-free tool-use trajectories.

    Each INPUT is a JSONL/Parquet file of rows {"image": PATH (relative to the file), "question",
    "answer", "task": count|compare_sizes|bar_value|locate, "params": {...}}, or rows with their own
    "program": [{"say", "code"}, ...] that prints "result: ANSWER". The code runs for real on the
    image file in a sandbox (its own namespaces as an unprivileged user, no network, a read-only
    system and a private temporary folder, caps on time, memory and processes); only
    trajectories whose printed answer matches the ground truth are kept.

    \b
    Example:
      fusionforge sft synth-vision-proxy --generate 400 -o proxy/
      fusionforge sft synth-vision-proxy charts=my_chart_qa.jsonl -o proxy/ --timeout 5
    """
    from fusionforge.mixers.sft.synth_job import SynthConfig, run_synth

    chosen = tuple(t.strip() for t in tasks.split(",") if t.strip())
    cfg = build_config(SynthConfig, {**options, "inputs": tuple(inputs), "generate": n_generate, "tasks": chosen})
    with partition_progress("synth-vision-proxy") as progress:
        report = run_synth(cfg, progress)
    console = _print(report, as_json, f"fusionforge sft synth-vision-proxy -> {cfg.output}", synth_table(report))
    if console is not None:
        print_sandbox(report["sandbox"], "sandbox", console)


def _print(report: dict, as_json: bool, title: str, detail: Table) -> Console | None:
    """The report as JSON, or as tables on a console that is returned for more lines (None for JSON)."""
    import json

    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return None
    console = Console()
    console.print(summary_table(report, title))
    console.print(detail)
    return console


def build_table(report: dict) -> Table:
    """Splits, tokens, tool use and the vision check of an ``sft build`` report."""
    table = Table(title="zero-vision SFT set", header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for split, facts in report["splits"].items():
        table.add_row(
            f"{split}: conversations / rows / tokens",
            f"{facts['conversations']:,} / {facts['rows']:,} / {facts['tokens']:,}",
        )
    table.add_row("token count", str(report["tokens"]["method"]))
    table.add_row("tool-use share (conversations)", f"{report['tool_use_share']['conversations']:.1%}")
    table.add_row("duplicates (exact / near)", f"{report['dedup']['exact']} / {report['dedup']['near']}")
    if report.get("decontamination"):
        table.add_row("decontaminated", str(report["decontamination"]["removed"]))
    table.add_row("vision check", report["vision"]["check"])
    return table


def synth_table(report: dict) -> Table:
    """Kept and rejected trajectories per task."""
    table = Table(title="trajectories", header_style="bold")
    for column in ("task", "inputs", "kept", "rejected"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task, counts in sorted(report["by_task"].items()):
        table.add_row(task, str(counts["inputs"]), str(counts["kept"]), str(counts["rejected"]))
    table.add_row("vision check", "", report["vision_check"], "")
    return table
