"""Per-core throughput and peak memory of every stage family, for ``docs/scale.md``'s projection.

One generated corpus (web-like text, image-text pairs, a folder of images, interleaved documents,
videos) goes through ``shard``; every later measurement reads those shards. Each measurement runs in
a fresh child process on the in-process executor (one process, as one Ray worker runs a stage), so
its peak resident memory (VmHWM) is that of one worker at the stage's default batch size. Rates are
units per CPU-second of the timed work (the process and the tools it started, e.g. ffmpeg), not per
wall second, so the shared machine's load moves them less; imports, input loading and model loads
are outside the clock (their memory is in the peak). Where a tool a user would otherwise run exists,
it runs in its own child on the same inputs and the ratio is printed (> 1: fusionforge does the work
in less CPU time); where none exists the row says so.

    python bench/stage_throughput.py --docs 20000 --images 1500 --interleaved 600 --videos 8 --json-out run.json
    python bench/stage_throughput.py --project run.json    # docs/scale.md's projection from the measurements
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit import peak_rss_mb  # noqa: E402
from dedupe import make_corpus, read_jsonl, run_datasketch  # noqa: E402
from image_dedupe import all_pairs  # noqa: E402
from shard_throughput import make_images  # noqa: E402

from fusionforge.pipelines.core.settings import RunSettings  # noqa: E402

LOCAL = RunSettings(executor="local")
CHILD_TIMEOUT_S = 1800
PICTURE_PX = 384  # side of the generated JPEGs (about 50-70 KB each, a typical web picture)
VIDEO_SECONDS = 8.0
VIDEO_SOURCES = ("testsrc+smptebars", "smptebars+rgbtestsrc+testsrc", "rgbtestsrc+testsrc")


# ---------------------------------------------------------------- the corpus (parent process)


def make_inputs(work: Path, docs: int, images: int, interleaved: int, videos: int) -> dict[str, float]:
    """Write the raw inputs under ``work/raw``; return what they hold (MB of text, video seconds, ...)."""
    raw = work / "raw"
    make_corpus(raw / "dedupe-words", docs, files=4)
    (raw / "text").mkdir(parents=True)
    text_bytes = 0
    for path in sorted((raw / "dedupe-words").glob("*.jsonl")):
        lines = []
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row["text"] = web_layout(row["text"])
            lines.append(json.dumps(row))
        data = ("\n".join(lines) + "\n").encode()
        (raw / "text" / path.name).write_bytes(data)
        text_bytes += len(data)
    shutil.rmtree(raw / "dedupe-words")
    make_images(raw / "images", images, PICTURE_PX)
    pairs = raw / "pairs"
    shutil.copytree(raw / "images", pairs / "img", ignore=shutil.ignore_patterns("*.txt"))
    rows = [{"id": f"p{i:06d}", "image": f"img/{i:06d}.jpg", "caption": caption(i)} for i in range(images)]
    (pairs / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    docs_dir = raw / "interleaved"
    shutil.copytree(raw / "images", docs_dir / "img", ignore=shutil.ignore_patterns("*.txt"))
    rng = random.Random(5)
    texts = [json.loads(line)["text"] for line in (raw / "text" / "part-00.jsonl").read_text().splitlines()]
    rows = []
    for i in range(interleaved):
        parts = [{"type": "text", "text": rng.choice(texts)}]
        for _ in range(rng.randint(1, 3)):
            parts += [{"type": "image", "image": f"img/{rng.randrange(images):06d}.jpg"}]
            parts += [{"type": "text", "text": rng.choice(texts)[:600]}]
        rows.append({"id": f"doc{i:06d}", "parts": parts})
    (docs_dir / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from fusionforge.pipelines.demo_corpus import make_video

    (raw / "videos").mkdir()
    for i in range(videos):
        path = raw / "videos" / f"v{i:04d}.mp4"
        source = VIDEO_SOURCES[i % len(VIDEO_SOURCES)]
        make_video(path, source, seconds=VIDEO_SECONDS / len(source.split("+")), size="640x360", rate=25)
        path.with_suffix(".txt").write_text(caption(i))
    return {
        "text_mb": text_bytes / 1e6,
        "docs": docs,
        "images": images,
        "interleaved": interleaved,
        "video_s": videos * VIDEO_SECONDS,
    }


def web_layout(words: str) -> str:
    """Sentences and paragraphs out of ``bench/dedupe.py``'s word runs (the line rules need lines).

    The breaks depend only on the word count, so a near-duplicate copy keeps its original's layout.
    """
    tokens = words.rstrip(".").split()
    rng = random.Random(len(tokens))
    paragraphs, sentences, i = [], [], 0
    while i < len(tokens):
        n = rng.randint(6, 22)
        sentences.append(" ".join(tokens[i : i + n]).capitalize() + rng.choice(".!?."))
        i += n
        if rng.random() < 0.25 or i >= len(tokens):
            paragraphs.append(" ".join(sentences))
            sentences = []
    return "\n\n".join(paragraphs)


def caption(i: int) -> str:
    return f"a synthetic picture, number {i}, of stripes and noise"


# ---------------------------------------------------------------- measurements (child processes)


def cpu_now() -> float:
    """CPU seconds of this process (all threads) and of the children it has waited for (ffmpeg, ffprobe)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def shard_step(work: Path, kind: str, partition_mb: float = 512.0) -> dict[str, float]:
    """``shard`` of one raw input; partitions of ``partition_mb`` (the default 512) bound a writer's rows."""
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    out = work / (kind if partition_mb == 512.0 else f"{kind}-{partition_mb:g}mb")
    cfg = ShardConfig(inputs=(f"{kind}={work / 'raw' / kind}",), output=str(out), partition_mb=partition_mb, run=LOCAL)
    started = cpu_now()
    report = run_shard(cfg)
    return {"cpu_s": cpu_now() - started, "records": report["inputs"]}


def load_records(folder: Path) -> pa.Table:
    from fusionforge.pipelines.transform import ManifestSource

    source = ManifestSource(folder)
    return pa.concat_tables([b for p in source.partitions() for b in source.read(p)], promote_options="permissive")


def stage_pass(work: Path, corpus: str, name: str, params: dict) -> dict[str, float]:
    """One stage over the corpus's records in slices of its default batch size (the stage's own time)."""
    from fusionforge.pipelines.core.registry import get

    table = load_records(work / corpus)
    stage_cls = get(name)
    stage = stage_cls(**params)
    batch = stage_cls.resources.batch_size
    rows = 0
    started = cpu_now()
    for i in range(0, table.num_rows, batch):
        rows += stage(table.slice(i, batch)).num_rows
    return {"cpu_s": cpu_now() - started, "records": table.num_rows, "rows_out": rows}


def clip_feed_pass(work: Path) -> dict[str, float]:
    """The CPU side of a CLIP actor (``image_clip_score_v1``, ``dedupe_embed_v1``) per batch of 64, without the
    model's forward pass: bounded decode, open_clip's ViT-B-32 preprocess, stacking, caption tokenizing. An actor
    does this on its own CPU, so it bounds what one GPU actor can be fed."""
    import open_clip
    import torch

    from fusionforge.filters.image.clip_score import open_image
    from fusionforge.filters.media import first_of_kind, item_bytes
    from fusionforge.pipelines.core import schema as S

    torch.set_num_threads(1)
    table = load_records(work / "pairs")
    _, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    media, captions = table.column(S.MEDIA).to_pylist(), table.column(S.TEXT).to_pylist()
    started = cpu_now()
    for i in range(0, len(media), 64):
        images = [open_image(item_bytes(first_of_kind(m, "image"))) for m in media[i : i + 64]]
        torch.stack([preprocess(image) for image in images])
        tokenizer(captions[i : i + 64])
    return {"cpu_s": cpu_now() - started, "records": len(media)}


def datatrove_pass(work: Path, name: str, docs: int) -> dict[str, float]:
    """datatrove's filter over the first ``docs`` documents (it is slow: its rate needs no more)."""
    from datatrove.data import Document
    from datatrove.pipeline import filters

    texts = load_records(work / "text").column("text").to_pylist()[:docs]
    flt = getattr(filters, name)()
    flt.filter(Document(text=texts[0], id="warm"))  # spaCy loads outside the clock
    started = cpu_now()
    for i, text in enumerate(texts):
        flt.filter(Document(text=text, id=str(i)))
    return {"cpu_s": cpu_now() - started, "records": len(texts)}


def py3langid_pass(work: Path) -> dict[str, float]:
    import py3langid

    texts = load_records(work / "text").column("text").to_pylist()
    py3langid.classify("warm")
    started = cpu_now()
    for text in texts:
        py3langid.classify(text)
    return {"cpu_s": cpu_now() - started, "records": len(texts)}


def fasttext_raw_pass(work: Path) -> dict[str, float]:
    from fusionforge.filters.text.fasttext_model import load_fasttext

    texts = [t.replace("\n", " ") for t in load_records(work / "text").column("text").to_pylist()]
    model = load_fasttext(work / "quality.bin")
    started = cpu_now()
    for i in range(0, len(texts), 1024):
        model.predict(texts[i : i + 1024], k=-1)
    return {"cpu_s": cpu_now() - started, "records": len(texts)}


def pillow_pass(work: Path) -> dict[str, float]:
    from PIL import Image

    paths = sorted((work / "raw" / "images").glob("*.jpg"))
    started = cpu_now()
    for path in paths:
        with Image.open(path) as image:
            w, h = image.size
            image.load()
            _ = min(w, h) >= 64 and max(w, h) / min(w, h) <= 3.0
    return {"cpu_s": cpu_now() - started, "records": len(paths)}


def ffprobe_pass(work: Path) -> dict[str, float]:
    import ffmpeg

    paths = sorted((work / "raw" / "videos").glob("*.mp4"))
    started = cpu_now()
    for path in paths:
        ffmpeg.probe(str(path), cmd=shutil.which("ffprobe"))
    return {"cpu_s": cpu_now() - started, "records": len(paths)}


def scenedetect_pass(work: Path) -> dict[str, float]:
    from scenedetect import ContentDetector, detect, split_video_ffmpeg

    paths = sorted((work / "raw" / "videos").glob("*.mp4"))
    out = Path(tempfile.mkdtemp(prefix="ff-bench-psd-"))
    started = cpu_now()
    clips = 0
    for path in paths:
        scenes = detect(str(path), ContentDetector())
        split_video_ffmpeg(str(path), scenes, output_dir=str(out), show_output=False)
        clips += len(scenes)
    seconds = cpu_now() - started
    shutil.rmtree(out)
    return {"cpu_s": seconds, "records": len(paths), "clips": clips}


def webdataset_pass(work: Path, kind: str) -> dict[str, float]:
    """What a user writes without fusionforge: read each record's bytes, hand them to ``ShardWriter``."""
    import webdataset as wds

    raw = work / "raw" / kind
    out = Path(tempfile.mkdtemp(prefix="ff-bench-wds-"))
    started = cpu_now()
    n = 0
    with wds.ShardWriter(str(out / "ref-%06d.tar"), maxsize=256e6, verbose=0) as sink:
        for key, sample in samples_of(raw, kind):
            sink.write({"__key__": key, **sample})
            n += 1
    seconds = cpu_now() - started
    shutil.rmtree(out)
    return {"cpu_s": seconds, "records": n}


def samples_of(raw: Path, kind: str):
    if kind == "text":
        for path in sorted(raw.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                yield row["id"], {"txt": row["text"]}
    elif kind == "pairs":
        for line in (raw / "pairs.jsonl").read_text().splitlines():
            row = json.loads(line)
            yield row["id"], {"jpg": (raw / row["image"]).read_bytes(), "txt": row["caption"]}
    elif kind == "interleaved":
        for line in (raw / "docs.jsonl").read_text().splitlines():
            row = json.loads(line)
            images = [p["image"] for p in row["parts"] if p["type"] == "image"]
            yield row["id"], {"json": line, **{f"{i}.jpg": (raw / p).read_bytes() for i, p in enumerate(images)}}
    else:  # images, videos: a folder of media files with .txt captions
        for path in sorted(p for p in raw.iterdir() if p.suffix != ".txt"):
            yield path.stem, {path.suffix[1:]: path.read_bytes(), "txt": path.with_suffix(".txt").read_text()}


def dedupe_step(work: Path, corpus: str, text: bool) -> dict[str, float]:
    from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe

    out = work / f"dedupe-{corpus}"
    started = cpu_now()
    report = run_dedupe(
        DedupeConfig(input=str(work / corpus), output=str(out), text=text, images=not text, videos=False, run=LOCAL)
    )
    summary = report["dedupe"]
    return {
        "cpu_s": cpu_now() - started,
        "records": report["inputs"],
        "phases": summary["seconds"],
        "band_rows": summary["band_rows"],
    }


def shuffle_partition_pass(work: Path, rows: int) -> dict[str, float]:
    """``reduce_part`` over one full shuffle partition of text band rows (the default bound, 2M): what one
    global-phase worker of ``dedupe`` holds. Documents of 17 bands plus their exact-key row, keys random
    (a corpus without duplicates), as the sketch phase writes them."""
    from fusionforge.filters.dedup.lsh import band_rows
    from fusionforge.pipelines.dedupe.grouping import PART, reduce_part
    from fusionforge.pipelines.dedupe.store import TEXT

    rng = np.random.default_rng(0)
    docs = rows // 18
    exact = rng.integers(0, 2**63, (docs, 2), dtype=np.uint64)
    keys = rng.integers(0, 2**63, (docs, 17), dtype=np.uint64)
    table = pa.table(band_rows(TEXT, np.arange(docs, dtype=np.int64) * 1024, exact, keys, np.ones(docs, bool)))
    table = table.append_column(PART, pa.array(np.zeros(table.num_rows, np.int32)))
    params = {"bucket_fanout": 64, "image_hamming": 8, "video_hamming": 8, "hamming_fanout": 512, "store": str(work)}
    started = cpu_now()
    reduce_part(table, params)
    return {"cpu_s": cpu_now() - started, "records": table.num_rows, "table_mb": table.nbytes / 1e6}


def datasketch_pass(work: Path) -> dict[str, float]:
    ids, texts = read_jsonl(work / "raw" / "text")
    started = cpu_now()
    run_datasketch(ids, texts)
    return {"cpu_s": cpu_now() - started, "records": len(ids)}


def imagehash_pass(work: Path) -> dict[str, float]:
    """imagehash's pHash of each file, then every pair within 8 bits (numpy, in blocks)."""
    import imagehash
    from PIL import Image

    paths = sorted((work / "raw" / "images").glob("*.jpg"))
    started = cpu_now()
    hashes = []
    for path in paths:
        with Image.open(path) as image:
            bits = imagehash.phash(image).hash.flatten()
        hashes.append(int("".join("1" if b else "0" for b in bits), 2))
    all_pairs(np.array(hashes, np.uint64)[:, None], 8)
    return {"cpu_s": cpu_now() - started, "records": len(paths)}


def filter_step(work: Path, corpus: str) -> dict[str, float]:
    from fusionforge.pipelines.filter_config import default_filters
    from fusionforge.pipelines.quality import QualityConfig, run_quality
    from fusionforge.pipelines.transform import TransformConfig

    cfg = QualityConfig(
        TransformConfig(str(work / corpus), str(work / f"filter-{corpus}"), run=LOCAL), tuple(default_filters())
    )
    started = cpu_now()
    report = run_quality(cfg)
    return {"cpu_s": cpu_now() - started, "records": report["inputs"]}


def pack_step(work: Path, corpus: str) -> dict[str, float]:
    from fusionforge.mixers.packing.job import PackConfig, run_pack

    out = work / f"pack-{corpus}"
    cfg = PackConfig(input=str(work / corpus), output=str(out), tokenizer=str(work / "tokenizer"), run=LOCAL)
    started = cpu_now()
    report = run_pack(cfg)
    return {"cpu_s": cpu_now() - started, "records": report["inputs"], "tokens": report["tokens"]}


def text_filter(name: str) -> tuple:
    return ("stage", "text", name, {})


# name -> (family, what, unit, how, reference name or None): how = (kind, *args) for ``run_child``
MEASURES: dict[str, tuple] = {
    "shard-text": ("shard", "text JSONL", "MB", ("shard", "text"), "wds-text"),
    "shard-text-4mb": ("shard", "text JSONL, 4 MB partitions", "MB", ("shard", "text", 4.0), None),
    "shard-pairs": ("shard", "image-text pairs", "pairs", ("shard", "pairs"), "wds-pairs"),
    "shard-images": ("shard", "folder of images", "images", ("shard", "images"), "wds-images"),
    "shard-interleaved": ("shard", "interleaved documents", "docs", ("shard", "interleaved"), "wds-interleaved"),
    "shard-videos": ("shard", "videos (640x360, 25 fps)", "video s", ("shard", "videos"), "wds-videos"),
    "gopher-quality": ("text filter", "text_gopher_quality_v1", "docs", text_filter("text_gopher_quality_v1"), "dt-gq"),
    "gopher-repetition": (
        "text filter",
        "text_gopher_repetition_v1",
        "docs",
        text_filter("text_gopher_repetition_v1"),
        "dt-gr",
    ),
    "c4": ("text filter", "text_c4_lines_v2", "docs", text_filter("text_c4_lines_v2"), "dt-c4"),
    "fineweb": ("text filter", "text_fineweb_quality_v1", "docs", text_filter("text_fineweb_quality_v1"), "dt-fw"),
    "lang-id": ("text filter", "text_lang_id_v1 (py3langid)", "docs", text_filter("text_lang_id_v1"), "py3langid"),
    "fasttext": ("text filter", "text_fasttext_v1 (tiny model, see notes)", "docs", ("fasttext",), "fasttext-raw"),
    "image-checks": (
        "image",
        "image_checks_v1 (full decode)",
        "images",
        ("stage", "pairs", "image_checks_v1", {}),
        "pil",
    ),
    "clip-feed": ("image", "CLIP actor's CPU side, no model (decode + preprocess)", "images", ("clip-feed",), None),
    "video-probe": ("video", "video_probe_v1", "videos", ("stage", "videos", "video_probe_v1", {}), "ffprobe"),
    "video-scenes": (
        "video",
        "video_scenes_v1 (detect + cut)",
        "video s",
        ("stage", "videos", "video_scenes_v1", {}),
        "psd",
    ),
    "video-frames": (
        "video",
        "video_frames_v1 (4-frame chunks)",
        "video s",
        ("stage", "videos", "video_frames_v1", {}),
        None,
    ),
    "dedupe-text": ("dedupe", "dedupe --only text (whole step)", "docs", ("dedupe", "text", True), "datasketch"),
    "dedupe-images": (
        "dedupe",
        "dedupe --only images (whole step)",
        "images",
        ("dedupe", "images", False),
        "imagehash",
    ),
    "dedupe-shuffle": ("dedupe", "one shuffle partition (2M band rows)", "band rows", ("shuffle", 2_000_000), None),
    "filter-text": ("filter", "filter text, default list (whole step)", "docs", ("filter", "text"), None),
    "filter-pairs": ("filter", "filter pairs, default list (whole step)", "pairs", ("filter", "pairs"), None),
    "pack-text": ("pack", "pack text, BPE tokenizer, L=8192 (whole step)", "docs", ("pack", "text"), None),
    "pack-pairs": ("pack", "pack pairs, BPE tokenizer, L=8192 (whole step)", "pairs", ("pack", "pairs"), None),
}
DATATROVE_DOCS = 2000
REFERENCES: dict[str, tuple[str, tuple]] = {
    **{f"wds-{k}": ("webdataset.ShardWriter, bytes copied", ("wds", k)) for k in ("text", "pairs", "images")},
    **{f"wds-{k}": ("webdataset.ShardWriter, bytes copied", ("wds", k)) for k in ("interleaved", "videos")},
    "dt-gq": ("datatrove GopherQualityFilter (spaCy)", ("datatrove", "GopherQualityFilter", DATATROVE_DOCS)),
    "dt-gr": ("datatrove GopherRepetitionFilter (spaCy)", ("datatrove", "GopherRepetitionFilter", DATATROVE_DOCS)),
    "dt-c4": ("datatrove C4QualityFilter (spaCy)", ("datatrove", "C4QualityFilter", DATATROVE_DOCS)),
    "dt-fw": ("datatrove FineWebQualityFilter (spaCy)", ("datatrove", "FineWebQualityFilter", DATATROVE_DOCS)),
    "py3langid": ("py3langid.classify per document", ("py3langid",)),
    "fasttext-raw": ("raw model.predict(list, k=-1)", ("fasttext-raw",)),
    "pil": ("Pillow open + load + size checks", ("pil",)),
    "ffprobe": ("ffmpeg.probe per file", ("ffprobe",)),
    "psd": ("PySceneDetect detect + split_video_ffmpeg", ("psd",)),
    "datasketch": ("datasketch MinHash.bulk + MinHashLSH + union-find", ("datasketch",)),
    "imagehash": ("imagehash.phash + numpy all pairs <= 8 bits", ("imagehash",)),
}


def fasttext_pass(work: Path) -> dict[str, float]:
    params = {"model_path": str(work / "quality.bin"), "label": "hq", "threshold": 0.5}
    return stage_pass(work, "text", "text_fasttext_v1", params)


RUNNERS = {  # the first element of a measurement's ``how``; the rest are the runner's arguments after ``work``
    "shard": shard_step,
    "stage": stage_pass,
    "fasttext": fasttext_pass,
    "dedupe": dedupe_step,
    "shuffle": shuffle_partition_pass,
    "filter": filter_step,
    "pack": pack_step,
    "wds": webdataset_pass,
    "datatrove": datatrove_pass,
    "py3langid": py3langid_pass,
    "fasttext-raw": fasttext_raw_pass,
    "pil": pillow_pass,
    "ffprobe": ffprobe_pass,
    "psd": scenedetect_pass,
    "datasketch": datasketch_pass,
    "imagehash": imagehash_pass,
    "clip-feed": clip_feed_pass,
}


def run_child(work: Path, how: tuple) -> dict:
    kind, *args = how
    return RUNNERS[kind](work, *args)


def child_main(work: Path, how: str) -> None:
    result = run_child(work, tuple(json.loads(how)))
    result["peak_mb"] = peak_rss_mb()
    print(json.dumps(result))


def measure(work: Path, how: tuple) -> dict:
    """Run one measurement in a fresh process; its JSON result (CPU seconds, units, peak MB)."""
    command = [sys.executable, __file__, "--child", json.dumps(list(how)), "--work", str(work)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{how} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the table (parent process)


def amount(unit: str, result: dict, inputs: dict[str, float]) -> float:
    """How many units a measurement processed: MB and video seconds from the inputs, else records."""
    if unit == "MB":
        return inputs["text_mb"]
    if unit == "video s":
        return inputs["video_s"]
    return result["records"]


def prepare_models(work: Path) -> None:
    """A tiny fastText quality model and a 4,000-token BPE, trained here on the corpus (nothing downloaded)."""
    from loader import train_tokenizer

    from fusionforge.filters.text.fasttext_train import TrainConfig, train_fasttext

    _, texts = read_jsonl(work / "raw" / "text")
    labelled = work / "labelled.jsonl"
    rows = [{"text": t, "label": "hq" if len(t) > 1500 else "lq"} for t in texts[:4000]]
    labelled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train_fasttext(TrainConfig(inputs=(str(labelled),), output=str(work / "quality.bin")))
    train_tokenizer(work / "tokenizer", texts[:4000])


# ---------------------------------------------------------------- the projection (docs/scale.md)

AUDIT_RECORDS_PER_S = 351_868  # bench/README.md, audit section (1M records, in-process, quiet machine, 2026-12-05)
CLIP_CPU_IMAGES_PER_S = 7.9  # bench/README.md, filters section (ViT-B-32 on one CPU core)
VIDEO_SECONDS_EACH = 60.0  # assumed mean length of the 1M videos
WORKLOADS = {  # name -> the measurements its pipeline is made of
    "1 TB of text": ["shard-text", "filter-text", "dedupe-text", "pack-text", "audit"],
    "100M image-text pairs": ["shard-pairs", "filter-pairs", "dedupe-images", "pack-pairs", "audit"],
    "1M videos of 60 s": ["shard-videos", "video-probe", "video-scenes", "video-frames", "audit"],
}
OVERHEAD = (1.7, 4.9)  # Ray CPU-s per in-process CPU-s: dedupe at 100k (1.66 / 0.99), and the worst fit on 2 CPUs
GRID = [(n, c) for c in (32, 64) for n in (8, 32, 128)]


def project(runs: list[dict]) -> None:
    """Print CPU-hours and wall hours on N nodes x C cores for the three workloads, from ``--json-out`` files
    of runs on the same corpus sizes (a later file's measurement replaces an earlier one's)."""
    data = {"inputs": runs[0]["inputs"], "rows": list({r["key"]: r for run in runs for r in run["rows"]}.values())}
    rates = {r["key"]: r["rate"] for r in data["rows"]}
    inputs = data["inputs"]
    doc_bytes = inputs["text_mb"] * 1e6 / inputs["docs"]
    units = {
        "1 TB of text": {"MB": 1e6, "docs": 1e12 / doc_bytes, "records": 1e12 / doc_bytes},
        "100M image-text pairs": {"pairs": 1e8, "images": 1e8, "records": 1e8},
        "1M videos of 60 s": {"video s": 1e6 * VIDEO_SECONDS_EACH, "videos": 1e6, "records": 1e6},
    }
    unit_of = {r["key"]: r["unit"] for r in data["rows"]}
    rates["audit"], unit_of["audit"] = AUDIT_RECORDS_PER_S, "records"
    print(f"mean document: {doc_bytes:,.0f} bytes of JSONL; 1 TB = {1e12 / doc_bytes:,.4g} documents")
    for name, steps in WORKLOADS.items():
        total = 0.0
        print(f"\n{name}\n\n| step | work | per core (per CPU-s) | CPU-hours |\n| --- | ---: | ---: | ---: |")
        for step in steps:
            unit = unit_of[step]
            work = units[name][unit if unit in units[name] else "records"]
            cpu_h = work / rates[step] / 3600
            total += cpu_h
            print(f"| {step} | {work:,.4g} {unit} | {rates[step]:,.1f} {unit} | {cpu_h:,.1f} |")
        print(f"| total | | | {total:,.0f} |")
        print(f"\nwall hours = k x {total:,.0f} / (N x C)\n\n| k | " + " | ".join(f"{n} x {c}" for n, c in GRID) + " |")
        print("| ---: | " + " | ".join("---:" for _ in GRID) + " |")
        for k in OVERHEAD:
            print(f"| {k} | " + " | ".join(f"{k * total / (n * c):,.2f}" for n, c in GRID) + " |")
    by_key = {r["key"]: r for r in data["rows"]}
    per_row = by_key["dedupe-shuffle"]["table_mb"] * 1e6 / by_key["dedupe-shuffle"]["records"]
    for key, count in (("dedupe-text", 1e12 / doc_bytes), ("dedupe-images", 1e8)):
        per_item = by_key[key]["band_rows"] / by_key[key]["records"]
        rows_total = per_item * count
        print(
            f"\n{key}: {per_item:.1f} band rows per item x {per_row:.1f} B = {rows_total * per_row / 1e9:,.0f} GB "
            f"shuffled; {-(-rows_total // 2e6):,.0f} partitions of 2M rows"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--interleaved", type=int, default=600)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--only", nargs="*", choices=sorted(MEASURES), help="measure only these (shards are built)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference tools")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--project", type=Path, nargs="*", help="print the projection from --json-out files")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.work, args.child)
        return
    if args.project:
        project([json.loads(path.read_text()) for path in args.project])
        return
    work = Path(tempfile.mkdtemp(prefix="ff-bench-stages-"))
    try:
        run_all(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_all(work: Path, args: argparse.Namespace) -> None:
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} CPUs", flush=True)
    inputs = make_inputs(work, args.docs, args.images, args.interleaved, args.videos)
    prepare_models(work)
    print("inputs: " + ", ".join(f"{k} {v:,.1f}" for k, v in inputs.items()), flush=True)
    wanted = args.only or list(MEASURES)
    shard_first = [f"shard-{k}" for k in ("text", "pairs", "images", "interleaved", "videos")]
    order = [m for m in shard_first if m in wanted or m.split("-")[1] in ("text", "pairs", "videos")]
    order += [m for m in MEASURES if m in wanted and m not in order]
    rows = []
    print("| family | stage | unit | units / CPU-s | peak MB | reference | ref units / CPU-s | ref peak MB | ratio |")
    print("| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for key in order:
        family, what, unit, how, ref = MEASURES[key]
        result = measure(work, how)
        row = {"key": key, "family": family, "what": what, "unit": unit, **result}
        row["rate"] = amount(unit, result, inputs) / result["cpu_s"]
        ref_cells = "none | | |"
        if ref is not None and not args.no_reference:
            ref_name, ref_how = REFERENCES[ref]
            ref_result = measure(work, ref_how)
            row["reference"] = {"name": ref_name, **ref_result}
            row["reference"]["rate"] = amount(unit, ref_result, inputs) / ref_result["cpu_s"]
            ratio = row["rate"] / row["reference"]["rate"]
            ref_cells = f"{ref_name} | {row['reference']['rate']:,.1f} | {ref_result['peak_mb']:,.0f} | {ratio:.2f}"
        rows.append(row)
        print(
            f"| {family} | {what} | {unit} | {row['rate']:,.1f} | {result['peak_mb']:,.0f} | {ref_cells} |", flush=True
        )
    print(f"load average at end: {os.getloadavg()}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"inputs": inputs, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
