"""``fusionforge pack``."""

from __future__ import annotations

import click

from fusionforge.cli.options import executor_options, library_errors, ranged, run_options
from fusionforge.cli.render import console, print_report
from fusionforge.mixers.packing.layout import SEQ_LEN
from fusionforge.mixers.tokens.vision import PRESETS
from fusionforge.pipelines.core.bounds import COUNT, FRACTION, NON_NEGATIVE, POSITIVE_FRACTION
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.progress import PHASE
from fusionforge.pipelines.core.settings import build_config


@click.command()
@click.argument("input_dir", metavar="IN", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--seq-len", type=ranged(SEQ_LEN), default=8192, show_default=True, help="Tokens per packed sequence (L)."
)
@click.option(
    "--vision-ratio",
    type=ranged(FRACTION),
    default=None,
    help="Target share of vision tokens in every window (default: the corpus's own share).",
)
@click.option(
    "--ratio-tolerance",
    type=ranged(NON_NEGATIVE),
    default=0.01,
    show_default=True,
    help="Allowed error of the global and per-window ratio (report.json: within_tolerance).",
)
@click.option(
    "--fail-on-tolerance",
    is_flag=True,
    help="Exit with status 3 when the global or a full window's ratio error exceeds --ratio-tolerance "
    "(the plan and report are written all the same).",
)
@click.option(
    "--vision-preset",
    default="kimi-k25",
    show_default=True,
    type=click.Choice(PRESETS),
)
@click.option(
    "--preset-set",
    "preset_overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a vision preset parameter, e.g. max_patches=4096.",
)
@click.option(
    "--tokenizer",
    type=click.Path(exists=True),
    default=None,
    help="tokenizer.json, a folder with one, or a tiktoken BPE file (default: a labelled estimate).",
)
@click.option(
    "--mixture",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Mixture YAML: per-source proportion / repeat / choose in tokens, budget, max epochs, seed.",
)
@click.option(
    "--window",
    type=ranged(COUNT),
    default=256,
    show_default=True,
    help="Sequences per window (a global batch): every window carries the target ratio.",
)
@click.option(
    "--seq-vision-max",
    type=ranged(POSITIVE_FRACTION),
    default=None,
    help="Most vision share one sequence may hold (2-D packing), e.g. 0.5.",
)
@click.option(
    "--video-group-tokens",
    type=ranged(COUNT),
    default=None,
    help="Largest video chunk group placed as one item (default: L).",
)
@click.option("--eos/--no-eos", default=True, show_default=True, help="End every sample with the EOS token.")
@click.option("--materialize", is_flag=True, help="Also write WebDataset shards of packed samples (packed/).")
@click.option("--samples-per-shard", type=ranged(COUNT), default=1000, show_default=True)
@click.option(
    "--energon",
    is_flag=True,
    help="With --materialize: make packed/ a Megatron-Energon dataset (packed/.nv-meta, written by energon's own "
    "preparation; needs the energon extra). See docs/training.md.",
)
@executor_options
@run_options
@library_errors
def pack(input_dir, output, preset_overrides, fail_on_tolerance, as_json, **options):
    """Pack an earlier output into fixed-length early-fusion sequences at a target vision-token ratio.

    Writes plan.parquet (segments and cu_seqlens per sequence), ledger.parquet, report.json and
    config.yaml into OUTPUT; with --materialize also packed/*.tar (token ids + media in order), and
    with --energon packed/.nv-meta, so that Megatron-Energon loads packed/ as a dataset.

    \b
    Example:
      fusionforge pack clean/ -o packed/ --seq-len 8192 --vision-ratio 0.10 --vision-preset kimi-k25 \\
          --tokenizer tok/tokenizer.json --mixture mix.yaml --materialize
    """
    from fusionforge.mixers.packing.job import PackConfig, run_pack
    from fusionforge.mixers.tokens.vision import parse_override

    try:
        overrides = dict(parse_override(item) for item in preset_overrides)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--preset-set") from exc
    cfg = build_config(PackConfig, {**options, "input": input_dir, "output": output, "preset_overrides": overrides})

    def show_phase(event: str, data: dict) -> None:
        if event == PHASE:
            status.update(data["name"])

    with console.status("packing") as status:
        report = run_pack(cfg, show_phase)
    if as_json:
        print_report(report, True, "")
    else:
        _print_table(report, output)
    from rich.text import Text

    for warning in report.get("warnings", []):
        console.print(Text.assemble(("warning: ", "bold yellow"), warning))
    check = report["within_tolerance"]
    if fail_on_tolerance and not check["ok"]:
        raise OutsideTolerance(
            f"vision ratio outside --ratio-tolerance {check['tolerance']}: global error "
            f"{report['global_ratio_error']:+.4f}, worst window {report['window_ratio_error_max']:.4f} "
            f"(plan and report written to {output})"
        )


class OutsideTolerance(click.ClickException):
    """``--fail-on-tolerance``: the plan missed the ratio tolerance (its own exit status, so scripts can tell)."""

    exit_code = 3


def _print_table(report, output) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"fusionforge pack -> {output}", header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    ratio = report["per_sequence_ratio"]
    for label, value in (
        ("inputs / kept / dropped", f"{report['inputs']:,} / {report['kept']:,} / {report['dropped']:,}"),
        ("sequences x L", f"{report['sequences']:,} x {report['seq_len']:,}"),
        ("padding", f"{report['padding_fraction']:.3%}"),
        ("vision ratio: target / global", f"{report['target_vision_ratio']:.2%} / {report['global_vision_ratio']:.2%}"),
        (
            "window error: mean / p95 / max",
            f"{report['window_ratio_error_mean']:.2%} / "
            f"{report['window_ratio_error_p95']:.2%} / "
            f"{report['window_ratio_error_max']:.2%}",
        ),
        ("within --ratio-tolerance", "yes" if report["within_tolerance"]["ok"] else "NO"),
        ("per-sequence ratio p5 / mean / p95", f"{ratio['p5']:.1%} / {ratio['mean']:.1%} / {ratio['p95']:.1%}"),
        ("zero-vision sequences", f"{report['zero_vision_share']:.1%}"),
        ("split documents", f"{report['split_documents']:,}"),
        ("text tokens", report["text_tokens_method"]),
        ("executor", f"{report['executor']['chosen']} ({report['executor']['reason']})"),
    ):
        table.add_row(label, str(value))
    for reason, count in report["reasons"].items():
        table.add_row(f"  {reason}", f"{count:,}")
    Console().print(table)
