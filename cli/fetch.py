"""``fusionforge fetch``."""

from __future__ import annotations

import click

from fusionforge.cli.options import library_errors, ranged, run_options
from fusionforge.cli.render import console, partition_progress, print_report
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE_INT, POSITIVE
from fusionforge.pipelines.core.settings import build_config


@click.command()
@click.argument("listings", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--url-col", default="url", show_default=True, help="The listing's column of image URLs.")
@click.option("--caption-col", default="caption", show_default=True, help="The listing's column of captions.")
@click.option(
    "--extra-col",
    "extra_cols",
    multiple=True,
    help="Carry this listing column into pairs.jsonl (repeatable; default: every other column).",
)
@click.option("--concurrency", type=ranged(COUNT), default=64, show_default=True, help="Requests in flight.")
@click.option("--per-host", type=ranged(COUNT), default=8, show_default=True, help="Requests in flight per host.")
@click.option(
    "--timeout",
    "timeout_s",
    type=ranged(POSITIVE),
    default=20.0,
    show_default=True,
    help="Seconds allowed for one attempt (connection, headers and the whole body).",
)
@click.option(
    "--retries",
    type=ranged(NON_NEGATIVE_INT),
    default=2,
    show_default=True,
    help="Retries of a timeout, a broken connection, 408, 429 and 5xx (Retry-After honoured).",
)
@click.option(
    "--backoff",
    "backoff_s",
    type=ranged(POSITIVE),
    default=0.5,
    show_default=True,
    help="Seconds before the first retry (jittered), doubled for each next one, at most 30.",
)
@click.option(
    "--max-bytes",
    type=ranged(COUNT),
    default=32 * 1024**2,
    show_default=True,
    help="Largest body: a larger Content-Length is refused unread, a longer body abandoned (too_large).",
)
@click.option(
    "--max-pixels", type=ranged(COUNT), default=None, help="Refuse images with more pixels (default: Pillow's limit)."
)
@click.option("--max-redirects", type=ranged(NON_NEGATIVE_INT), default=5, show_default=True)
@click.option(
    "--content-type",
    "content_types",
    multiple=True,
    default=("image/*",),
    show_default=True,
    help="Allowed Content-Type (repeatable; 'image/*' style); a response without one is judged by decoding.",
)
@click.option(
    "--ignore-opt-out",
    is_flag=True,
    help="Do not honour X-Robots-Tag noai/noimageai/none/noindex/noimageindex. Your responsibility: "
    "the site owner said no.",
)
@click.option(
    "--contact",
    default=None,
    help="Added to the User-Agent (fusionforge/VERSION (+CONTACT)), e.g. an e-mail or a page about your crawl.",
)
@click.option(
    "--partition-size",
    type=ranged(COUNT),
    default=10_000,
    show_default=True,
    help="URLs per partition (one image folder, one unit of the parts and completion markers).",
)
@run_options
@library_errors
def fetch(**options):
    """Download the images of URL listings into image files and a pairs listing that `shard` reads.

    Each LISTING is PATH or NAME=PATH: a JSONL (.gz/.zst/.bz2) or Parquet file, a folder or a glob of
    them, with a URL and a caption column. Writes OUTPUT/images/, OUTPUT/pairs.jsonl (read it with
    `fusionforge shard NAME=OUTPUT/pairs.jsonl`), ledger.parquet (every URL: kept, dropped or failed,
    with its HTTP status or error) and report.json (counts, bytes, URLs/s). --resume continues a
    killed run without asking again for any URL it decided.

    \b
    Example:
      fusionforge fetch laion=part-00000.parquet -o fetched/ --url-col URL --caption-col TEXT --contact me@example.org
      fusionforge shard laion=fetched/pairs.jsonl -o shards/
    """
    from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
    from fusionforge.pipelines.fetch.config import FetchConfig
    from fusionforge.pipelines.fetch.run import run_fetch

    cfg = build_config(
        FetchConfig,
        {
            **options,
            "listings": tuple(options["listings"]),
            "extra_cols": tuple(options["extra_cols"]) or None,
            "content_types": tuple(options["content_types"]),
            "max_pixels": options["max_pixels"] or DEFAULT_MAX_PIXELS,
        },
    )
    with partition_progress("fetch") as progress:
        report = run_fetch(cfg, progress)
    print_report(report, options["as_json"], f"fusionforge fetch -> {cfg.output}")
    if not options["as_json"]:
        console.print(
            f"{report['urls_this_run']:,} URLs decided in {report['fetch_seconds']:.1f} s: "
            f"{report['urls_per_s']:,.1f} URLs/s, {report['attempts']:,} attempts, "
            f"{report['bytes_downloaded'] / 1024**2:,.1f} MB downloaded",
            highlight=False,
        )
