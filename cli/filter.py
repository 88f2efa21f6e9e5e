"""``fusionforge filter``: quality filters over an earlier output (config file and flags)."""

from __future__ import annotations

import click

from fusionforge.cli.options import executor_options, library_errors, ranged
from fusionforge.cli.render import partition_progress, print_report
from fusionforge.filters.decontam.decontaminate import ACTIONS as DECONTAMINATE_ACTIONS
from fusionforge.filters.image.checks import ASPECT_RATIO
from fusionforge.filters.image.clip_model import COSINE, DEVICES
from fusionforge.filters.text.pii import ACTIONS as PII_ACTIONS
from fusionforge.filters.video.split import SCENE_SCORE
from fusionforge.pipelines.core.bounds import (
    COUNT,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_FRACTION,
)
from fusionforge.pipelines.core.settings import RunSettings, build_config
from fusionforge.pipelines.filter_config import CLIP_STAGES


def _flag_settings(options: dict) -> list[tuple[str, dict]]:
    """(stage, parameters) for every flag the user gave; the --clip-* flags go to the stages --clip-on names."""
    clip = {
        "model": options["clip_model"],
        "pretrained": options["clip_pretrained"],
        "threshold": options["clip_threshold"],
        "top_fraction": options["clip_top_fraction"],
        "device": options["clip_device"],
    }
    pairs = [
        ("web_blocklist_v1", {"domains_file": options["block_domains"], "url_substrings_file": options["block_urls"]}),
        ("interleaved_nodes_v1", {}),
        ("interleaved_doc_v1", {"min_images": options["min_images"], "max_images": options["max_images"]}),
        ("text_lang_id_v1", {"languages": options["languages"], "model_path": options["lang_model"]}),
        ("text_gopher_quality_v1", {"min_words": options["min_words"]}),
        (
            "text_fasttext_v1",
            {
                "model_path": options["fasttext_model"],
                "label": options["fasttext_label"],
                "threshold": options["fasttext_threshold"],
                "top_fraction": options["fasttext_top_fraction"],
            },
        ),
        ("text_pii_v1", {"action": options["pii_action"], "max_items": options["pii_max_items"]}),
        (
            "decontaminate_v1",
            {
                "evals": list(options["decontaminate"]) or None,
                "eval_images": list(options["decontaminate_images"]) or None,
                "ngram": options["decontaminate_ngram"],
                "action": options["decontaminate_action"],
            },
        ),
        ("image_checks_v1", {"min_side": options["min_image_side"], "max_aspect_ratio": options["max_aspect_ratio"]}),
        *[(stage, dict(clip)) for stage in CLIP_STAGES[options["clip_on"]]],
        ("video_probe_v1", {"min_duration_s": options["min_duration"], "max_duration_s": options["max_duration"]}),
        ("video_scenes_v1", {"threshold": options["scene_threshold"]}),
        ("video_motion_v1", {"min_motion": options["min_motion"]}),
        ("video_frames_v1", {"fps": options["frames_fps"]}),
    ]
    out = []
    for stage, params in pairs:
        given = {k: v for k, v in params.items() if v is not None}
        wanted = (
            (stage == "video_scenes_v1" and options["split_scenes"])
            or (stage == "text_pii_v1" and options["pii"])
            or (stage.startswith("interleaved_") and options["interleaved_rules"])
        )
        if given or wanted:
            out.append((stage, given))
    return out


@click.command("filter")
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file with the ordered filter list (default: language ID, text heuristics, image checks, video probe).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="STAGE.PARAM=VALUE",
    help="Set a stage parameter (repeatable), e.g. text_gopher_quality_v1.min_words=30.",
)
@click.option(
    "--interleaved-rules",
    is_flag=True,
    help="Add the interleaved-document rules: interleaved_nodes_v1 (logo-, icon- and banner-like images "
    "leave the document) and interleaved_doc_v1 (1 to 30 images per document), OBELICS' defaults.",
)
@click.option("--min-images", type=ranged(NON_NEGATIVE_INT), help="Fewest images an interleaved document may have.")
@click.option("--max-images", type=ranged(NON_NEGATIVE_INT), help="Most images an interleaved document may have.")
@click.option(
    "--block-domains",
    type=click.Path(exists=True, dir_okay=False),
    help="File of domains (one a line) whose pages are dropped, subdomains included (web_blocklist_v1).",
)
@click.option(
    "--block-urls",
    type=click.Path(exists=True, dir_okay=False),
    help="File of URL substrings (one a line); a page whose URL holds one is dropped (web_blocklist_v1).",
)
@click.option(
    "--languages",
    type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
    metavar="CODES",
    help="Keep only these languages (comma-separated codes as the detector spells them).",
)
@click.option(
    "--lang-model",
    type=click.Path(exists=True, dir_okay=False),
    help="fastText language-ID model (lid.176.bin or GlotLID); default: py3langid's bundled model.",
)
@click.option("--min-words", type=ranged(NON_NEGATIVE_INT), help="Gopher: fewest words a document may have.")
@click.option("--fasttext-model", type=click.Path(exists=True, dir_okay=False), help="fastText classifier to score.")
@click.option("--fasttext-label", help="Label whose probability is the score (e.g. hq).")
@click.option("--fasttext-threshold", type=ranged(FRACTION), help="Keep records scoring at least this.")
@click.option(
    "--fasttext-top-fraction", type=ranged(POSITIVE_FRACTION), help="Keep this fraction of records, best first."
)
@click.option("--pii", is_flag=True, help="Find personal data in text and redact it (text_pii_v1).")
@click.option(
    "--pii-action",
    type=click.Choice(PII_ACTIONS),
    help="redact: replace each piece with a tag like <EMAIL> (the default); mark: store spans and counts only.",
)
@click.option(
    "--pii-max-items", type=ranged(NON_NEGATIVE_INT), help="Drop records with more pieces of personal data than this."
)
@click.option(
    "--decontaminate",
    multiple=True,
    metavar="NAME=PATH",
    help="Evaluation texts (JSONL, Parquet or .txt; repeatable): drop records sharing a 13-gram with them.",
)
@click.option(
    "--decontaminate-images",
    multiple=True,
    metavar="NAME=PATH",
    help="Evaluation images (a folder, file or glob; repeatable): drop records with a near-identical image.",
)
@click.option("--decontaminate-ngram", type=ranged(COUNT), help="Words in a shared n-gram (default 13).")
@click.option(
    "--decontaminate-action",
    type=click.Choice(DECONTAMINATE_ACTIONS),
    help="drop (the default) or mark: store the matches and drop nothing.",
)
@click.option("--min-image-side", type=ranged(NON_NEGATIVE_INT), help="Shortest image side allowed, in pixels.")
@click.option("--max-aspect-ratio", type=ranged(ASPECT_RATIO), help="Largest long/short side ratio of an image.")
@click.option(
    "--clip-on",
    type=click.Choice(sorted(CLIP_STAGES)),
    default="image",
    show_default=True,
    help="Which CLIP stages the --clip-* flags configure (and add): image-text pairs "
    "(image_clip_score_v1), video keyframes against the caption (video_clip_score_v1), or both.",
)
@click.option("--clip-model", help="open_clip model name, a model-config JSON, or local-dir:PATH.")
@click.option("--clip-pretrained", help="CLIP weights: a local .pt/.safetensors file or a locally cached tag.")
@click.option("--clip-threshold", type=ranged(COSINE), help="Keep records with a CLIP score of at least this.")
@click.option(
    "--clip-top-fraction",
    type=ranged(POSITIVE_FRACTION),
    help="Keep this fraction of the records CLIP scores, best first.",
)
@click.option("--clip-device", type=click.Choice(DEVICES), help="Where CLIP runs.")
@click.option(
    "--clip-gpus", type=ranged(NON_NEGATIVE), help="GPUs per CLIP actor (Ray schedules the actors on GPU nodes)."
)
@click.option("--min-duration", type=ranged(NON_NEGATIVE), help="Shortest video allowed, in seconds.")
@click.option("--max-duration", type=ranged(NON_NEGATIVE), help="Longest video allowed, in seconds.")
@click.option("--split-scenes", is_flag=True, help="Split videos at scene cuts into clip records.")
@click.option("--scene-threshold", type=ranged(SCENE_SCORE), help="Scene-change score that starts a new clip (0-1).")
@click.option("--min-motion", type=ranged(NON_NEGATIVE), help="Drop videos whose mean frame difference is below this.")
@click.option("--frames-fps", type=ranged(POSITIVE), help="Sample video frames at this rate into 4-frame chunks.")
@click.option(
    "--shard-size",
    "shard_size_mb",
    type=ranged(NON_NEGATIVE),
    default=256.0,
    show_default=True,
    help="Close an output shard at about this many MB (0: no size limit).",
)
@click.option("--shard-count", type=ranged(COUNT), default=None, help="Close an output shard at this many samples.")
@click.option("--resume", is_flag=True, help="Continue a killed run in the same -o; finished work is kept.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@executor_options
@library_errors
def filter_command(input_dir, output, config_path, overrides, clip_gpus, shard_size_mb, as_json, **flags):
    """Score and filter the records of an earlier output (shard, dedupe or filter).

    Filters run in the order of the list; each adds its scores as columns and a reason to records
    it rejects. Kept records go to new shards, the rest to rejected/ with every score, and
    report.json counts drops per reason per source.

    \b
    Example:
      fusionforge filter dedup/ -o clean/ --config filters.yaml
      fusionforge filter shards/ -o clean/ --languages en,de --min-words 30 --split-scenes
      fusionforge filter shards/ -o clean/ --pii --decontaminate mmlu=mmlu_test.jsonl --decontaminate-images vqa=vqa/
      fusionforge filter web/ -o clean/ --interleaved-rules --max-images 20 --block-domains domains.txt
      fusionforge filter shards/ -o clean/ --clip-pretrained clip-b32.safetensors --clip-top-fraction 0.3 \\
        --clip-on both --clip-gpus 1 --executor ray
    """
    from fusionforge.pipelines.filter_config import (
        apply_overrides,
        default_filters,
        load_filters,
        with_resources,
        with_setting,
    )
    from fusionforge.pipelines.quality import QualityConfig, default_transform, run_quality

    clip_flags = ("clip_model", "clip_pretrained", "clip_threshold", "clip_top_fraction", "clip_device")
    if flags["clip_on"] != "image" and clip_gpus is None and all(flags[k] is None for k in clip_flags):
        raise click.UsageError(
            "--clip-on only chooses the stages the --clip-* flags configure; give those flags "
            "(e.g. --clip-pretrained PATH)"
        )
    entries = load_filters(config_path) if config_path else default_filters()
    for stage, params in _flag_settings(flags):
        entries = with_setting(entries, stage, **params)
    entries = apply_overrides(entries, overrides)
    if clip_gpus is not None:
        for stage in CLIP_STAGES[flags["clip_on"]]:
            entries = with_resources(entries, stage, num_gpus=clip_gpus)
    run = build_config(RunSettings, flags)
    sharding = {"shard_size_mb": shard_size_mb or None, "shard_count": flags["shard_count"]}
    transform = default_transform(input_dir, output, **sharding, run=run)
    with partition_progress("filter") as progress:
        report = run_quality(QualityConfig(transform, tuple(entries)), progress)
    print_report(report, as_json, f"fusionforge filter -> {output}")
