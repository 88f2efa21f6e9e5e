"""The demo's pretraining chain: shard -> dedupe -> filter -> pack, each step printing its table (and semantic
dedup beside the chain when an embedding model is available offline)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from fusionforge.cli.render import partition_progress, summary_table
from fusionforge.pipelines.core.settings import RunSettings


def shard_step(console: Console, inputs: dict[str, str], out: Path, run: RunSettings) -> str:
    """Ingest the generated corpus into shards; return the output folder."""
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    cfg = ShardConfig(
        inputs=tuple(f"{name}={path}" for name, path in inputs.items()),
        output=str(out / "shards"),
        shard_count=100,
        run=run,
    )
    with partition_progress("shard") as progress:
        report = run_shard(cfg, progress)
    console.print(summary_table(report, f"shard -> {cfg.output}"))
    console.print(by_source(report))
    return cfg.output


def by_source(report: dict) -> Table:
    table = Table(title="records by source and modality", header_style="bold")
    for column in ("source/modality", "kept", "dropped", "failed"):
        table.add_column(column, justify="left" if column == "source/modality" else "right")
    for group, counts in report["by_source_modality"].items():
        table.add_row(group, str(counts["kept"]), str(counts["dropped"]), str(counts["failed"]))
    return table


def dedupe_step(console: Console, out: Path, previous: str, run: RunSettings) -> str:
    """Remove exact and near duplicates (text, images, video) from the previous step's output."""
    from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe

    cfg = DedupeConfig(input=previous, output=str(out / "dedup"), shard_count=100, paragraphs=True, run=run)
    with partition_progress("dedupe") as progress:
        report = run_dedupe(cfg, progress)
    stats = report["dedupe"]
    table = Table(title=f"dedupe -> {cfg.output} ({stats['seconds_total']:.1f} s)", header_style="bold")
    for column in ("space", "items", "clusters", "exact dropped", "near dropped"):
        table.add_column(column, justify="left" if column == "space" else "right")
    for space in ("text", "image", "video"):
        table.add_row(
            space,
            str(stats["items"].get(space, 0)),
            str(stats[f"{space}_clusters"]),
            str(stats[f"{space}_exact_dropped"]),
            str(stats[f"{space}_near_dropped"]),
        )
    console.print(table)
    counts = stats["paragraphs"]
    console.print(
        f"boilerplate: {counts['frequent_paragraphs']} paragraphs found in {counts['min_docs']}+ documents, "
        f"{counts['paragraphs_removed']} removed from {counts['documents_changed']} documents "
        f"({counts['documents_emptied']} left empty, dropped)"
    )
    console.print(f"kept {report['kept']} of {report['inputs']} records; clusters in {cfg.output}/clusters.parquet")
    return cfg.output


SEMANTIC_TEXT_MODEL = "minishlab/potion-base-8M"  # model2vec's small static model, used when in the local cache


def semantic_step(console: Console, out: Path, previous: str, run: RunSettings) -> str | None:
    """Semantic dedup of the dedupe output (a side branch: the chain goes on from ``previous``), when a model2vec
    model is in the local Hugging Face cache; nothing is downloaded, a missing model is said and skipped."""
    from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe

    model = cached_model(SEMANTIC_TEXT_MODEL)
    if model is None:
        console.print(
            f"[yellow]skipped[/] semantic dedup: no embedding model is available offline ({SEMANTIC_TEXT_MODEL} is "
            "not in the local cache; give a local model2vec folder: fusionforge dedupe --semantic --text-model DIR, "
            "and CLIP weights for images and keyframes: --clip-pretrained PATH)"
        )
        return None
    cfg = DedupeConfig(
        input=previous, output=str(out / "semantic-dedup"), semantic=True, text_model=model, shard_count=100, run=run
    )
    with partition_progress("dedupe --semantic") as progress:
        report = run_dedupe(cfg, progress)
    stats = report["dedupe"]
    console.print(
        f"semantic dedup -> {cfg.output} ({stats['seconds_total']:.1f} s): {stats['items'].get('text', 0)} texts "
        f"embedded with {SEMANTIC_TEXT_MODEL}, {stats['text_clusters']} clusters at cosine >= {stats['threshold']}, "
        f"{report['dropped']} dropped (the chain goes on from {previous})"
    )
    return cfg.output


def cached_model(repo: str) -> str | None:
    """The local folder of ``repo`` in the Hugging Face cache, or None when it was never downloaded."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo, local_files_only=True)
    except (ImportError, OSError):  # huggingface_hub missing, or not cached (LocalEntryNotFoundError is an OSError)
        return None


DEMO_FILTERS = """
filters:
  - stage: interleaved_nodes_v1          # logos and icons leave the pages (the pages stay)
    min_side: 64                         # the demo's pictures are small; OBELICS uses 150
  - interleaved_doc_v1                   # 1 to 30 images per interleaved document
  - text_lang_id_v1                      # py3langid's bundled model: works offline
  - stage: text_gopher_quality_v1
    languages: [en]                      # Gopher's stop words are English
    min_words: 30                        # the demo documents are short
  - text_gopher_repetition_v1
  - stage: text_c4_lines_v2
    min_sentences: 3
  - text_fineweb_quality_v1
  - image_checks_v1
  - video_probe_v1
  - video_scenes_v1                      # the 3-scene clip becomes 3 clip records
  - video_motion_v1                      # static test patterns are dropped
  - video_frames_v1                      # 2 fps, chunks of 4 frames (Kimi K2.5's temporal unit)
"""
# The safety signals whose models ship inside their packages (two keyframes a video keeps the demo quick).
SAFETY_FILTERS = {
    "safety_nsfw_v1": ("nudenet", "max_score: 0.6"),  # NudeNet's bundled detector
    "safety_faces_v1": ("cv2", "blur: true"),  # OpenCV's Haar cascade; faces blurred in the kept images
    "safety_text_share_v1": ("rapidocr_onnxruntime", "max_text_share: 0.5"),  # RapidOCR's bundled models
}


def safety_filters(console: Console) -> str:
    """The filter-list lines of the safety stages whose package is installed; a skip line for each other one."""
    from importlib.util import find_spec

    lines = []
    for stage, (module, setting) in SAFETY_FILTERS.items():
        if find_spec(module) is None:
            console.print(f"[yellow]skipped[/] {stage}: {module} is not installed (see docs/install.md, [safety])")
            continue
        lines.append(f"  - stage: {stage}\n    {setting}\n    max_keyframes: 2\n")
    console.print(
        "[yellow]skipped[/] aesthetic score: no score head or CLIP weights are available offline "
        "(fusionforge filter --aesthetic-head HEAD.pth --aesthetic-clip-pretrained CLIP.pt)"
    )
    return "".join(lines)


def filter_step(console: Console, input_dir: str, output_dir: str, run: RunSettings) -> str:
    """Run the quality filters on the demo's shards and print drops per reason per source."""
    import yaml

    from fusionforge.pipelines.filter_config import parse_filters, with_setting
    from fusionforge.pipelines.quality import QualityConfig, run_quality
    from fusionforge.pipelines.transform import TransformConfig

    console.print(
        "[yellow]skipped[/] CLIP image-text and keyframe scores: no CLIP weights are available offline "
        "(give a local checkpoint: fusionforge filter --clip-pretrained PATH)"
    )
    console.print(
        "[yellow]skipped[/] fastText quality score: no quality model is available offline "
        "(train one: fusionforge filters train-fasttext hq=good.jsonl lq=bad.jsonl -o q.bin)"
    )
    entries = parse_filters(yaml.safe_load(DEMO_FILTERS + safety_filters(console)), "demo filters")
    entries = with_setting(entries, "decontaminate_v1", evals=[f"demo_eval={_eval_set(input_dir, output_dir)}"])
    entries = with_setting(entries, "text_pii_v1")
    cfg = QualityConfig(TransformConfig(input=input_dir, output=output_dir, shard_count=100, run=run), tuple(entries))
    with partition_progress("filter") as progress:
        report = run_quality(cfg, progress)
    table = Table(title=f"filter -> {output_dir} (language ID: {report['language_detector']})", header_style="bold")
    for column in ("source", "reason", "records"):
        table.add_column(column, justify="right" if column == "records" else "left")
    for source, reasons in report["reasons_by_source"].items():
        for reason, count in reasons.items():
            table.add_row(source, reason, str(count))
    table.add_row("all", "kept", str(report["kept"]))
    table.add_row("all", "derived (scene clips)", str(report["derived"]))
    console.print(table)
    pii = {k.split("__")[1]: v["total"] for k, v in report["scores"].items() if k.startswith("text_pii_v1__")}
    found = ", ".join(f"{kind} {int(total)}" for kind, total in pii.items() if kind != "count" and total)
    console.print(f"personal data redacted (text_pii_v1): {found or 'none'}")
    console.print(safety_line(report["scores"]))
    return output_dir


def _eval_set(input_dir: str, output_dir: str) -> Path:
    """Two of the demo's news documents as an "evaluation set", so decontamination has something to catch."""
    import json

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from fusionforge.pipelines.core.io import atomic_path

    manifest = pq.read_table(Path(input_dir) / "manifest.parquet", columns=["id", "source", "text"])
    news = manifest.filter(pc.equal(manifest.column("source"), "news")).slice(5, 2).to_pylist()
    path = Path(output_dir).parent / "raw" / "demo_eval.jsonl"
    with atomic_path(path) as temporary:
        temporary.write_text("".join(json.dumps({"id": r["id"], "question": r["text"]}) + "\n" for r in news))
    return path


def safety_line(scores: dict) -> str:
    """One line on what the safety stages saw (records scored, highest NSFW score, faces, text share)."""
    wanted = {
        "safety_nsfw_v1__score": "NSFW score p95",
        "safety_faces_v1__faces": "faces per picture p95",
        "safety_text_share_v1__text_share": "text share p95",
    }
    found = [f"{label} {scores[c]['p95']:.2f}" for c, label in wanted.items() if c in scores]
    if not found:
        return "safety signals: none ran"
    counts = max(scores[c]["count"] for c in wanted if c in scores)
    return f"safety signals over {counts} records with pictures: " + ", ".join(found)


def pack_step(console: Console, out: Path, previous: str, run: RunSettings, tokenizer: Path) -> str:
    """Pack the previous step's output into 2,048-token sequences at 10% vision (kimi-k25 tokens, ``tokenizer``'s
    text tokens, so the training loader can rebuild the ids)."""
    from fusionforge.mixers.packing.job import PackConfig, run_pack

    cfg = PackConfig(
        input=previous,
        output=str(out / "packed"),
        seq_len=2048,
        vision_ratio=0.10,
        window=8,
        tokenizer=str(tokenizer),
        run=run,
    )
    report = run_pack(cfg)
    table = Table(title=f"pack -> {cfg.output} (L=2048, r=10%, kimi-k25, the demo's BPE)", header_style="bold")
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
    return cfg.output
