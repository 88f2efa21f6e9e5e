"""``fusionforge show``: one packed sequence, as a reader would want it."""

from __future__ import annotations

import json

import click

from fusionforge.cli.options import library_errors, ranged
from fusionforge.pipelines.core.bounds import NON_NEGATIVE_INT


@click.command()
@click.argument("packed", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--sequence", "sequence_id", type=ranged(NON_NEGATIVE_INT), required=True, help="The sequence_id to show."
)
@click.option(
    "--tokenizer",
    type=click.Path(exists=True),
    help="The tokenizer pack used (default: the path pack recorded); a different one is refused.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the sequence as JSON (segments, media, vision_tokens).")
@library_errors
def show(packed, sequence_id, tokenizer, as_json):
    """Print a packed sequence: its documents with sources and boundaries, text decoded, media as markers.

    \b
    Example:
      fusionforge show packed/ --sequence 12
      fusionforge show packed/ --sequence 12 --json
    """
    from fusionforge.mixers.training.sequence_view import describe_sequence, marker

    view = describe_sequence(packed, sequence_id, tokenizer)
    if as_json:
        click.echo(json.dumps(view, indent=2, ensure_ascii=False))
        return
    share = f"{view['vision_share']:.1%}"
    click.echo(
        f"sequence {view['sequence_id']} (window {view['window']}): {view['tokens']}/{view['seq_len']} tokens, "
        f"{view['vision_tokens']} vision ({share}), {view['padding']} padding, {len(view['segments'])} documents"
    )
    for segment in view["segments"]:
        cut = f", piece {segment['piece']} of a split record" if segment["split"] else ""
        click.echo(
            f"\n[{segment['start']}:{segment['end']}) {segment['sample_id']} from {segment['source']} "
            f"({segment['modality']}, record tokens {segment['record_tokens'][0]}:{segment['record_tokens'][1]}{cut})"
        )
        body = "".join(p["text"] if "text" in p else marker(p["media"]) for p in segment["parts"])
        click.echo(body if view["tokenizer"] else body + "  (no tokenizer: text not shown)")
