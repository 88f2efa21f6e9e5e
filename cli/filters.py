"""``fusionforge filters ...``: tools around the filters (training a fastText classifier)."""

from __future__ import annotations

import json

import click

from fusionforge.cli.options import CONTEXT_SETTINGS, library_errors, ranged
from fusionforge.filters.text.fasttext_train import LOSSES
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE_INT, POSITIVE, PROPER_FRACTION, SEED
from fusionforge.pipelines.core.settings import build_config


@click.group(context_settings=CONTEXT_SETTINGS)
def filters() -> None:
    """Tools for the quality filters.

    \b
    Example:
      fusionforge filters train-fasttext hq=wiki.jsonl lq=crawl.jsonl -o quality.bin
    """


@filters.command("train-fasttext")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Model file to write.")
@click.option("--text-field", default="text", show_default=True)
@click.option("--label-field", default="label", show_default=True, help="A label, or a list of labels, per row.")
@click.option("--dim", type=ranged(COUNT), default=64, show_default=True, help="Vector size.")
@click.option("--epoch", type=ranged(COUNT), default=10, show_default=True)
@click.option("--lr", type=ranged(POSITIVE), default=0.1, show_default=True, help="Learning rate (fastText's default).")
@click.option("--word-ngrams", type=ranged(COUNT), default=2, show_default=True)
@click.option("--min-count", type=ranged(COUNT), default=1, show_default=True)
@click.option(
    "--bucket",
    type=ranged(NON_NEGATIVE_INT),
    default=200_000,
    show_default=True,
    help="Hash buckets for n-grams (fastText's 2,000,000 default makes a 256 MB model).",
)
@click.option(
    "--loss",
    type=click.Choice(LOSSES),
    default="softmax",
    show_default=True,
    help="ova: independent labels (multi-label).",
)
@click.option("--threads", type=ranged(COUNT), default=1, show_default=True, help="Training threads (1: reproducible).")
@click.option(
    "--valid-fraction",
    type=ranged(PROPER_FRACTION),
    default=0.1,
    show_default=True,
    help="Rows held out to measure precision and recall.",
)
@click.option("--seed", type=ranged(SEED), default=0, show_default=True)
@click.option("--quantize", is_flag=True, help="Quantise the model (much smaller file, slightly less accurate).")
@click.option("--json", "as_json", is_flag=True, help="Print the training report as JSON.")
@library_errors
def train_fasttext(inputs, as_json, **options):
    """Train a supervised fastText classifier (quality or language ID) from labelled JSONL.

    Each INPUT is PATH (rows carry --label-field) or LABEL=PATH (every row of PATH gets LABEL),
    so positives and negatives can come from separate files, as for DCLM's quality classifier.
    Use the model with `fusionforge filter --fasttext-model` or `--lang-model`.

    \b
    Example:
      fusionforge filters train-fasttext hq=wiki.jsonl lq=crawl.jsonl -o quality.bin --quantize
      fusionforge filters train-fasttext labelled.jsonl -o lang.bin --label-field lang
    """
    from fusionforge.filters.text.fasttext_train import TrainConfig
    from fusionforge.filters.text.fasttext_train import train_fasttext as train

    report = train(build_config(TrainConfig, {**options, "inputs": tuple(inputs)}))
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    click.echo(
        f"wrote {report['output']} ({report['bytes']:,} bytes) from {report['train_rows']:,} rows "
        f"({report['skipped_rows']} skipped) in {report['seconds']:.1f} s; labels: {report['labels']}"
    )
    if report.get("valid_rows"):
        click.echo(
            f"held-out rows: {report['valid_rows']:,}; precision@1 {report['precision_at_1']}, "
            f"recall@1 {report['recall_at_1']}"
        )
