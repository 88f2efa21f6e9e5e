"""A raw corpus with known duplicates of every kind, for the dedupe pipeline tests."""

from __future__ import annotations

import atexit
import json
import random
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "filters" / "dedup"))

from dedup_corpus import injected_corpus, precision_recall, translate, true_pairs  # noqa: E402, F401
from media_fixtures import clip, crop_fraction, encoded, picture, transcode  # noqa: E402

from fusionforge.pipelines.core.settings import RunSettings, build_config
from fusionforge.pipelines.demo_corpus import document  # noqa: E402


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def build_raw(root: Path, originals: int = 120) -> tuple[dict[str, str], dict]:
    """Write the corpus; return (inputs for shard, what is known about it)."""
    root.mkdir(parents=True, exist_ok=True)
    texts, kinds = injected_corpus(seed=3, originals=originals)
    web = [{"id": f"d{i:04d}", "text": t} for i, t in enumerate(texts)]
    rng = random.Random(4)
    english = document(rng, "en", 12)
    web.append({"id": "english", "text": english})
    forum = [
        {"id": "copy-a", "text": web[0]["text"]},
        {"id": "copy-b", "text": web[1]["text"].upper()},
        {"id": "longer", "text": web[2]["text"] + " and three more"},
        {"id": "translated", "text": translate(english, "en", "de")},
        {"id": "own", "text": document(rng, "fr")},
    ]
    photos = root / "photos"
    photos.mkdir()
    for i in range(8):
        (photos / f"p{i}.png").write_bytes(encoded(picture(i), "PNG"))
    (photos / "p0_small.jpg").write_bytes(encoded(picture(0).resize((128, 128)), "JPEG", quality=80))
    (photos / "p1_jpeg.jpg").write_bytes(encoded(picture(1), "JPEG", quality=60))
    (photos / "p2_crop.png").write_bytes(encoded(crop_fraction(picture(2), left=0.03, top=0.03), "PNG"))
    (photos / "p3_lossless.webp").write_bytes(encoded(picture(3), "WEBP", lossless=True))
    docs = root / "docs"
    (docs / "images").mkdir(parents=True)
    (docs / "images" / "same_as_p5.png").write_bytes(encoded(picture(5), "PNG", compress_level=9))
    (docs / "images" / "own.png").write_bytes(encoded(picture(20), "PNG"))
    parts = [
        {"type": "text", "text": document(rng, "en", 8)},
        {"type": "image", "image": "images/same_as_p5.png"},
        {"type": "text", "text": "Figure one."},
        {"type": "image", "image": "images/own.png"},
    ]
    _jsonl(
        docs / "docs.jsonl",
        [
            {"id": "doc-0", "parts": parts},
            {"id": "doc-1", "parts": parts},
            {"id": "doc-2", "parts": [{"type": "text", "text": document(rng, "en", 8)}]},
        ],
    )
    clips = root / "clips"
    clips.mkdir()
    original = clip(clips / "c0.mp4", "testsrc", seconds=3)
    transcode(original, clips / "c0_reencoded.mp4", "-c:v", "libx264", "-crf", "35", "-vf", "scale=240:180")
    transcode(original, clips / "c0_remux.mkv", "-c", "copy")
    clip(clips / "c1.mp4", "smptebars", seconds=3)
    inputs = {
        "web": str(_jsonl(root / "web.jsonl", web)),
        "forum": str(_jsonl(root / "forum.jsonl", forum)),
        "photos": str(photos),
        "docs": str(docs / "docs.jsonl"),
        "clips": str(clips),
    }
    return inputs, {"texts": texts, "kinds": kinds}


@lru_cache(maxsize=1)
def sharded_corpus() -> tuple[Path, dict]:
    """The corpus built and sharded once per test session (both dedupe test modules use it)."""
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    root = Path(tempfile.mkdtemp(prefix="ff-dedupe-tests-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    inputs, known = build_raw(root / "raw")
    run_shard(
        ShardConfig(
            inputs=tuple(f"{k}={v}" for k, v in inputs.items()),
            output=str(root / "in"),
            shard_count=60,
            run=RunSettings(executor="local"),
        )
    )
    return root, known


def local_config(src: Path, out: Path, **overrides):
    """The settings every test run shares (small shuffle partitions, so several are used)."""
    from fusionforge.pipelines.dedupe import DedupeConfig

    base = {"input": str(src), "output": str(out), "executor": "local", "rows_per_shuffle_partition": 3000}
    return build_config(DedupeConfig, {**base, **overrides})


@lru_cache(maxsize=1)
def baseline_run() -> tuple[Path, dict]:
    """One in-process dedupe of the shared corpus with default settings: (output folder, report)."""
    from fusionforge.pipelines.dedupe import run_dedupe

    root, _ = sharded_corpus()
    return root / "baseline", run_dedupe(local_config(root / "in", root / "baseline"))
