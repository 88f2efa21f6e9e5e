"""``fusionforge shard``."""

from __future__ import annotations

import click

from fusionforge.cli.options import executor_options, library_errors, ranged, run_options
from fusionforge.cli.render import partition_progress, print_report
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE, POSITIVE
from fusionforge.pipelines.core.settings import build_config
from fusionforge.pipelines.core.video import DEFAULT_TOOL_MEMORY_MB
from fusionforge.pipelines.readers.base import DEFAULT_MAX_RECORD_MB, UNRESOLVED_IMAGES, ReaderOptions
from fusionforge.pipelines.readers.plan import FORMATS
from fusionforge.pipelines.stages.probe_media import VIDEO_CHECKS


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="Input format (auto: detected per input).",
)
@click.option(
    "--shard-size",
    "shard_size_mb",
    type=ranged(NON_NEGATIVE),
    default=256.0,
    show_default=True,
    help="Close a shard at about this many MB (0: no size limit).",
)
@click.option("--shard-count", type=ranged(COUNT), default=None, help="Close a shard at this many samples.")
@click.option(
    "--partition-mb",
    type=ranged(POSITIVE),
    default=512.0,
    show_default=True,
    help="Input bytes per unit of work (and of resume).",
)
@click.option("--shuffle", is_flag=True, help="Shuffle records inside each partition (deterministic under --seed).")
@click.option(
    "--max-pixels", type=ranged(COUNT), default=None, help="Reject images with more pixels (default: Pillow's limit)."
)
@click.option(
    "--video-check",
    type=click.Choice(VIDEO_CHECKS),
    default="decode",
    show_default=True,
    help="'decode' decodes every video once to catch truncation; 'probe' only reads headers.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=ranged(POSITIVE),
    default=60.0,
    show_default=True,
    help="Seconds allowed for each ffprobe/ffmpeg call.",
)
@click.option(
    "--tool-memory-mb",
    type=ranged(POSITIVE),
    default=DEFAULT_TOOL_MEMORY_MB,
    show_default=True,
    help="Memory (address space) allowed for each ffprobe/ffmpeg call; a video that needs more fails.",
)
@click.option(
    "--max-record-mb",
    type=ranged(POSITIVE),
    default=DEFAULT_MAX_RECORD_MB,
    show_default=True,
    help="Largest record read (a JSONL line, a Parquet row, a tar sample's text); a larger one fails.",
)
@click.option("--id-field", default="id", show_default=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--caption-field", default="caption", show_default=True)
@click.option("--image-field", default="image", show_default=True)
@click.option(
    "--video-field",
    default="video",
    show_default=True,
    help="Pairs listings: a row without the image field but with this one is a video record.",
)
@click.option("--parts-field", default="parts", show_default=True, help="Interleaved documents' list of parts.")
@click.option(
    "--unresolved-images",
    type=click.Choice(UNRESOLVED_IMAGES),
    default="keep",
    show_default=True,
    help="WARC/HTML pages: an image whose bytes are not found stays as a URL-only part (keep) or is left out (drop).",
)
@executor_options
@run_options
@library_errors
def shard(**options):
    """Ingest text, image-text pairs, interleaved documents and videos into WebDataset shards.

    Each INPUT is PATH or NAME=PATH (a file, a directory or a glob; .jsonl may be .gz/.zst/.bz2).
    Web inputs: WARC files (.warc, .warc.gz; read together, images found across them), saved HTML
    pages and PDFs become interleaved documents (pip install 'fusionforge[web]').
    A folder of mixed files reads each file by its own format; OUTPUT is never read as input.
    Writes shards/*.tar, manifest.parquet, ledger.parquet (every input's fate), rejected/,
    report.json and config.yaml into OUTPUT.

    \b
    Example:
      fusionforge shard web=raw/web.jsonl.gz pets=raw/pets/ clips=raw/videos/ -o out/ --shard-count 1000
    """
    from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    cfg = build_config(
        ShardConfig,
        {
            **options,
            "inputs": tuple(options["inputs"]),
            "format": options["fmt"],
            "shard_size_mb": options["shard_size_mb"] or None,
            "max_pixels": options["max_pixels"] or DEFAULT_MAX_PIXELS,
            "reader": build_config(ReaderOptions, options),
        },
    )
    with partition_progress("shard") as progress:
        report = run_shard(cfg, progress)
    print_report(report, options["as_json"], f"fusionforge shard -> {cfg.output}")
