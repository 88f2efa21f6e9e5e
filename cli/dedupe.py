"""``fusionforge dedupe``."""

from __future__ import annotations

import click

from fusionforge.cli.options import executor_options, library_errors, ranged, run_options
from fusionforge.cli.render import console, partition_progress, print_report
from fusionforge.filters.dedup.image_hash import HASH_KINDS
from fusionforge.filters.image.clip_model import DEVICES
from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE, POSITIVE, POSITIVE_FRACTION, PROPER_FRACTION
from fusionforge.pipelines.core.settings import build_config
from fusionforge.pipelines.dedupe.config import COMPARED, CROP, HAMMING_BITS, PARAGRAPH_DOCS, PERMUTATIONS


@click.command()
@click.argument("input_dir", metavar="IN", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--keep",
    default="first",
    show_default=True,
    help="Copy kept per cluster: first (input order), longest, or best:<score column>.",
)
@click.option(
    "--text-threshold",
    type=ranged(POSITIVE_FRACTION),
    default=0.8,
    show_default=True,
    help="Jaccard of word n-gram shingles at or above which two texts are duplicates.",
)
@click.option("--num-perm", type=ranged(PERMUTATIONS), default=128, show_default=True, help="MinHash permutations.")
@click.option("--ngram", type=ranged(COUNT), default=5, show_default=True, help="Shingle size (words, or characters).")
@click.option("--char-ngrams", is_flag=True, help="Shingle characters instead of words (for texts without spaces).")
@click.option("--bands", type=ranged(COUNT), default=None, help="LSH bands (with --rows; default: from the threshold).")
@click.option("--rows", type=ranged(COUNT), default=None, help="Rows per LSH band (with --bands).")
@click.option(
    "--no-verify",
    "verify",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Accept every LSH candidate (no Jaccard check): faster, less precise.",
)
@click.option(
    "--recheck-margin",
    type=ranged(PROPER_FRACTION),
    default=0.1,
    show_default=True,
    help="Estimates this close to the threshold are settled by the exact Jaccard (0: never).",
)
@click.option(
    "--no-casefold", "casefold", is_flag=True, flag_value=False, default=True, help="Exact text keys keep case."
)
@click.option(
    "--keep-whitespace",
    "collapse_whitespace",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Exact text keys keep whitespace as it is.",
)
@click.option("--image-hash", type=click.Choice(HASH_KINDS), default="phash", show_default=True)
@click.option(
    "--image-hamming",
    type=ranged(HAMMING_BITS),
    default=None,
    help="Most differing bits (of 64) between near-duplicate images (default: 8 for pHash, 6 for dHash).",
)
@click.option(
    "--image-crops",
    type=ranged(CROP),
    default=0.03,
    show_default=True,
    help="Also hash crops cutting this fraction per side, so cropped copies match (0: off).",
)
@click.option(
    "--image-color",
    type=ranged(NON_NEGATIVE),
    default=100.0,
    show_default=True,
    help="Largest colour difference of 16x16 thumbnails (mean of the 4 worst cells) for a pHash match "
    "to count (0: no colour check).",
)
@click.option("--video-fps", type=ranged(POSITIVE), default=1.0, show_default=True, help="Frames sampled per second.")
@click.option("--video-max-frames", type=ranged(COUNT), default=32, show_default=True, help="Frames sampled at most.")
@click.option(
    "--video-hamming",
    type=ranged(HAMMING_BITS),
    default=8,
    show_default=True,
    help="Most differing bits between two aligned frames that match.",
)
@click.option(
    "--video-match",
    type=ranged(POSITIVE_FRACTION),
    default=0.8,
    show_default=True,
    help="Fraction of aligned frames that must match (of the longer video).",
)
@click.option(
    "--only",
    type=click.Choice(COMPARED),
    multiple=True,
    help="Compare only these (repeat the option); default: all three.",
)
@click.option("--within-source", is_flag=True, help="Only look for duplicates inside each source.")
@click.option(
    "--semantic",
    is_flag=True,
    help="SemDeDup: compare embeddings (k-means, then cosine pairs per cluster) instead of hashes.",
)
@click.option(
    "--text-model",
    help="--semantic: a local model2vec folder for texts, or 'clip' (CLIP's text tower).",
)
@click.option(
    "--clip-model",
    default="ViT-B-32",
    show_default=True,
    help="--semantic: open_clip model name, config JSON or local-dir:PATH.",
)
@click.option("--clip-pretrained", help="--semantic: CLIP weights (a local file) for images and video keyframes.")
@click.option(
    "--device", type=click.Choice(DEVICES), default="auto", show_default=True, help="--semantic: where the models run."
)
@click.option(
    "--semantic-threshold",
    type=ranged(POSITIVE_FRACTION),
    default=0.9,
    show_default=True,
    help="--semantic: cosine similarity at or above which two items are duplicates.",
)
@click.option(
    "--semantic-clusters",
    type=ranged(COUNT),
    default=None,
    help="--semantic: k-means clusters per kind (default: one per 1,000 items).",
)
@click.option(
    "--semantic-probes",
    type=ranged(COUNT),
    default=2,
    show_default=True,
    help="--semantic: clusters each item joins (its nearest): more find more pairs k-means cut apart, at more cost.",
)
@click.option(
    "--kmeans-sample",
    type=ranged(COUNT),
    default=100_000,
    show_default=True,
    help="--semantic: the centroids are trained on at most this many embeddings.",
)
@click.option(
    "--max-keyframes",
    type=ranged(COUNT),
    default=4,
    show_default=True,
    help="--semantic: keyframes averaged per video.",
)
@click.option(
    "--embed-gpus",
    type=ranged(NON_NEGATIVE),
    default=0.0,
    show_default=True,
    help="--semantic: GPUs per embedding actor (Ray).",
)
@click.option(
    "--reuse-embeddings",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="--semantic: take the embeddings of this earlier --semantic output (same input and models), "
    "to re-tune without running a model.",
)
@click.option(
    "--paragraphs",
    is_flag=True,
    help="Also remove boilerplate: paragraphs found in --paragraph-min-docs documents or more leave every "
    "document (MINT-1T style); a document left empty is dropped as dedupe:boilerplate_only.",
)
@click.option(
    "--paragraph-min-docs",
    type=ranged(PARAGRAPH_DOCS),
    default=3,
    show_default=True,
    help="Documents a paragraph must be in (after duplicate removal) to count as boilerplate.",
)
@click.option(
    "--shard-size",
    "shard_size_mb",
    type=ranged(NON_NEGATIVE),
    default=256.0,
    show_default=True,
    help="Close an output shard at about this many MB (0: no size limit).",
)
@click.option("--shard-count", type=ranged(COUNT), default=None, help="Close an output shard at this many samples.")
@click.option(
    "--timeout",
    "timeout_s",
    type=ranged(POSITIVE),
    default=60.0,
    show_default=True,
    help="Seconds allowed for each ffmpeg call.",
)
@executor_options
@run_options
@library_errors
def dedupe(**options):
    """Remove exact and near duplicates (text, images, video) from an earlier output IN.

    Texts: normalised exact keys, then MinHash LSH over word 5-grams with verified candidates.
    Images: decoded-pixel keys, then pHash with crops. Videos: decoded-stream keys, then aligned
    frame pHashes. With --semantic: embeddings instead (model2vec or CLIP, local files only), k-means,
    and cosine pairs inside each cluster; embeddings stay in OUT/_embeddings for re-tuning.
    Writes the survivors (shards, manifest), clusters.parquet (every cluster, its
    kept copy and each member's similarity), and a ledger naming the kept copy of each drop.

    \b
    Example:
      fusionforge dedupe out/ -o dedup/ --text-threshold 0.8 --keep longest
      fusionforge dedupe out/ -o dedup/ --only text --keep best:text_quality_v1__score
      fusionforge dedupe dedup/ -o semdedup/ --semantic --text-model models/potion --clip-pretrained clip.pt
      fusionforge dedupe dedup/ -o semdedup2/ --semantic --text-model models/potion --semantic-threshold 0.85 \\
        --reuse-embeddings semdedup/
      fusionforge dedupe web/ -o dedup/ --paragraphs --paragraph-min-docs 5
    """
    from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe

    kinds = set(options["only"]) or set(COMPARED)
    compared = {kind: kind in kinds for kind in COMPARED}
    given = {"input": options["input_dir"], "shard_size_mb": options["shard_size_mb"] or None, **compared}
    cfg = build_config(DedupeConfig, {**options, **given})
    as_json, output = options["as_json"], cfg.output
    with partition_progress("dedupe", log_phases=not as_json) as progress:
        report = run_dedupe(cfg, progress)
    print_report(report, as_json, f"fusionforge dedupe -> {output}")
    if not as_json and cfg.semantic:
        stats = report["dedupe"]
        console.print(
            f"semantic clusters: {stats['clusters']} (text {stats['text_clusters']}, image {stats['image_clusters']}, "
            f"video {stats['video_clusters']}); k-means {stats['kmeans']}; {stats['edges']} pairs at cosine >= "
            f"{stats['threshold']}; embeddings in {output}/_embeddings; details in {output}/clusters.parquet"
        )
    elif not as_json:
        stats = report["dedupe"]
        console.print(
            f"clusters: {stats['clusters']} (text {stats['text_clusters']}, image {stats['image_clusters']}, "
            f"video {stats['video_clusters']}); LSH {stats['lsh']['bands']} bands x "
            f"{stats['lsh']['rows']} rows; details in {output}/clusters.parquet"
        )
        if "paragraphs" in stats:
            counts = stats["paragraphs"]
            console.print(
                f"paragraphs: {counts['frequent_paragraphs']} of {counts['distinct_paragraphs']} distinct found in "
                f"{counts['min_docs']}+ documents; {counts['paragraphs_removed']} removed from "
                f"{counts['documents_changed']} documents, {counts['documents_emptied']} left empty and dropped"
            )
        for space, lsh in stats["hamming_lsh"].items():
            if lsh["capped_buckets"]:
                console.print(
                    f"[yellow]{space}: {lsh['capped_buckets']} buckets held more than {lsh['fanout']} "
                    f"distinct hashes; {lsh['skipped_comparisons']} comparisons skipped (the fanout cap)"
                )
