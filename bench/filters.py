"""Filter throughput against the tools a user would otherwise run, on the same inputs, in one process.

- text heuristics: fusionforge's Gopher quality / Gopher repetition / C4 / FineWeb stages over Arrow
  batches versus datatrove's filters of the same names (spaCy word tokenizer, as datatrove uses for
  English), docs/s, plus how often the keep/drop decisions agree;
- fastText: the ``text_fasttext_v1`` stage versus a raw ``model.predict(list_of_lines, k=-1)``;
- image checks: the ``image_checks_v1`` stage (full decode, and facts only) versus a Pillow loop;
- video: ``video_probe_v1`` versus ``ffmpeg.probe`` per file, and ``video_scenes_v1`` (detect and cut
  clips) versus PySceneDetect (``detect`` + ``split_video_ffmpeg``), videos/s and clips/s;
- CLIP (``--clip-images N``, CPU): ``image_clip_score_v1`` on the in-process executor versus raw
  open_clip (preprocess + ``encode_image``/``encode_text`` + cosine, same batch size) on the same
  image-text pairs. Speed does not depend on weight values, so ViT-B-32 is built from random weights,
  saved as ``.safetensors`` and loaded back through ``pretrained=PATH`` by both sides.

ratio = fusionforge rate / reference rate (> 1: fusionforge is faster). One process, one core each.

    python bench/filters.py --docs 3000 --lines 100000 --images 800 --videos 6 --clip-images 64
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ZIPF_WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there been one all we their has would when if so no will more can who out "
    "river market light history science garden station language winter council research village teacher "
    "engine harvest journey painting museum theory shipping festival mountain bridge weather lecture "
    "harbour election medicine forest kitchen orchestra library factory poetry island"
).split()


def synthetic_docs(n: int, seed: int = 0) -> list[str]:
    """Web-like documents: paragraphs of Zipf-distributed words, with the usual junk mixed in."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(ZIPF_WORDS))]

    def sentence() -> str:
        words = rng.choices(ZIPF_WORDS, weights, k=rng.randint(6, 22))
        return " ".join(words).capitalize() + rng.choice([".", ".", ".", "!", "?"])

    docs = []
    for _ in range(n):
        paragraphs = [" ".join(sentence() for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(2, 8))]
        kind = rng.random()
        if kind < 0.1:
            paragraphs.insert(0, "Home | About | Contact\nMenu\nLogin")
        elif kind < 0.2:
            paragraphs.append("\n".join(f"• {sentence()}" for _ in range(rng.randint(3, 10))))
        elif kind < 0.25:
            paragraphs += [paragraphs[0]] * 3
        elif kind < 0.28:
            paragraphs.append("We use cookies to improve your experience. Read our privacy policy.")
        elif kind < 0.30:
            paragraphs.append("function init() { return window.load; }")
        docs.append("\n\n".join(paragraphs))
    return docs


def bench_text(docs: list[str]) -> list[tuple]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    from fusionforge.filters.text.c4 import C4Lines
    from fusionforge.filters.text.fineweb import FineWebQuality
    from fusionforge.filters.text.gopher_quality import GopherQuality
    from fusionforge.filters.text.gopher_repetition import GopherRepetition
    from fusionforge.pipelines.core import schema as S

    rows = [
        {S.ID: f"d/{i}", S.SOURCE: "d", S.MODALITY: "text", S.TEXT: t, S.INPUT_FILE: "d", S.INPUT_POSITION: i}
        for i, t in enumerate(docs)
    ]
    table = S.validate(pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA))
    pairs = [
        ("Gopher quality", GopherQuality(), GopherQualityFilter()),
        ("Gopher repetition", GopherRepetition(), GopherRepetitionFilter()),
        ("C4 lines", C4Lines(), C4QualityFilter()),
        ("FineWeb quality", FineWebQuality(), FineWebQualityFilter()),
    ]
    results, total_ours, total_ref = [], 0.0, 0.0
    for name, ours, theirs in pairs:
        theirs.filter(Document(text=docs[0], id="warm"))  # load spaCy outside the timing
        started = time.perf_counter()
        out = pa.concat_tables([ours(table.slice(i, 1024)) for i in range(0, table.num_rows, 1024)])
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        verdicts = [theirs.filter(Document(text=t, id=str(i))) for i, t in enumerate(docs)]
        ref_s = time.perf_counter() - started
        ours_keep = [r is None for r in out.column(S.DROP_REASON).to_pylist()]
        ref_keep = [v is True for v in verdicts]
        agree = np.mean([a == b for a, b in zip(ours_keep, ref_keep)])
        results.append(
            (
                f"text: {name}",
                len(docs) / ours_s,
                len(docs) / ref_s,
                "docs/s",
                f"agree {agree:.1%}, kept {np.mean(ours_keep):.0%} vs {np.mean(ref_keep):.0%}",
            )
        )
        total_ours += ours_s
        total_ref += ref_s
    results.append(("text: all four", len(docs) / total_ours, len(docs) / total_ref, "docs/s", "datatrove + spaCy"))
    return results


def bench_fasttext(n_lines: int, work: Path) -> list[tuple]:
    from fusionforge.filters.text.fasttext_model import load_fasttext
    from fusionforge.filters.text.fasttext_score import FastTextScore
    from fusionforge.filters.text.fasttext_train import TrainConfig, train_fasttext
    from fusionforge.pipelines.core import schema as S

    docs = synthetic_docs(4000, seed=1)
    rng = random.Random(2)
    labelled = work / "labelled.jsonl"
    labelled.write_text(
        "\n".join(json.dumps({"text": d, "label": "hq" if "•" not in d and "|" not in d else "lq"}) for d in docs)
    )
    train_fasttext(TrainConfig(inputs=(str(labelled),), output=str(work / "q.bin")))
    lines = [" ".join(rng.choices(ZIPF_WORDS, k=rng.randint(20, 80))) for _ in range(n_lines)]
    model = load_fasttext(work / "q.bin")
    started = time.perf_counter()
    model.predict(lines, k=-1)
    raw_s = time.perf_counter() - started
    rows = [
        {S.ID: f"l/{i}", S.SOURCE: "l", S.MODALITY: "text", S.TEXT: t, S.INPUT_FILE: "l", S.INPUT_POSITION: i}
        for i, t in enumerate(lines)
    ]
    table = S.validate(pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA))
    stage = FastTextScore(model_path=str(work / "q.bin"), label="hq", threshold=0.5)
    started = time.perf_counter()
    for i in range(0, table.num_rows, 1024):
        stage(table.slice(i, 1024))
    ours_s = time.perf_counter() - started
    return [
        (
            "fastText: text_fasttext_v1 vs raw predict",
            n_lines / ours_s,
            n_lines / raw_s,
            "lines/s",
            "batch 1024, k=-1, P(hq) + decision",
        )
    ]


def bench_images(n: int, work: Path) -> list[tuple]:
    from PIL import Image

    from fusionforge.filters.image.checks import ImageChecks
    from fusionforge.pipelines.core import schema as S

    folder = work / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        w, h = int(rng.integers(200, 640)), int(rng.integers(200, 640))
        y, x = np.mgrid[0:h, 0:w]
        pixels = np.stack([(np.sin(x / rng.uniform(5, 40)) * 60 + 128 + rng.normal(0, 10, (h, w)))] * 3, axis=-1)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=88)
        item = {
            "kind": "image",
            "uri": str(path),
            "offset": None,
            "size": path.stat().st_size,
            "bytes": None,
            "sha256": None,
            "format": "jpeg",
            "width": w,
            "height": h,
        }
        rows.append(
            {
                S.ID: f"i/{i}",
                S.SOURCE: "i",
                S.MODALITY: "image",
                S.TEXT: "a picture",
                S.MEDIA: [item],
                S.INPUT_FILE: str(path),
                S.INPUT_POSITION: 0,
            }
        )
    table = S.validate(pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA))
    started = time.perf_counter()
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as image:
            w, h = image.size
            image.load()
            _ = min(w, h) >= 64 and max(w, h) / min(w, h) <= 3.0 and path.stat().st_size <= 50 * 1024**2
    ref_s = time.perf_counter() - started
    out = []
    for decode in (True, False):
        stage = ImageChecks(decode=decode)
        started = time.perf_counter()
        for i in range(0, table.num_rows, 256):
            stage(table.slice(i, 256))
        seconds = time.perf_counter() - started
        label = "image_checks_v1 (full decode)" if decode else "image_checks_v1 (stored facts)"
        out.append((f"images: {label}", n / seconds, n / ref_s, "images/s", "vs Pillow open + load + checks"))
    return out


def bench_video(n: int, work: Path) -> list[tuple]:
    import ffmpeg
    from scenedetect import ContentDetector, detect, split_video_ffmpeg

    from fusionforge.filters.video.probe import VideoProbe
    from fusionforge.filters.video.split import SceneSplit
    from fusionforge.pipelines.core import schema as S
    from fusionforge.pipelines.core.video import probe_video, require_tool
    from fusionforge.pipelines.demo_corpus import make_video

    folder = work / "videos"
    folder.mkdir()
    sources = ["testsrc+smptebars+rgbtestsrc", "smptebars+testsrc", "rgbtestsrc+testsrc+smptebars+testsrc"]
    paths = []
    for i in range(n):
        path = folder / f"v{i:03d}.mp4"
        make_video(path, sources[i % len(sources)], seconds=4.0, size="320x240", rate=25)
        paths.append(path)
    rows = []
    for i, path in enumerate(paths):
        info = probe_video(str(path))
        item = {
            "kind": "video",
            "uri": str(path),
            "offset": None,
            "size": path.stat().st_size,
            "bytes": None,
            "format": "mp4",
            "width": info.width,
            "height": info.height,
            "duration_s": info.duration_s,
            "fps": info.fps,
            "n_frames": info.n_frames,
            "codec": info.codec,
        }
        rows.append(
            {
                S.ID: f"v/{i}",
                S.SOURCE: "v",
                S.MODALITY: "video",
                S.TEXT: "clip",
                S.MEDIA: [item],
                S.INPUT_FILE: str(path),
                S.INPUT_POSITION: 0,
            }
        )
    table = S.validate(pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA))
    rounds = 10  # probing is quick: repeat it so the timing is not noise
    started = time.perf_counter()
    for _ in range(rounds):
        for path in paths:
            ffmpeg.probe(str(path), cmd=shutil.which("ffprobe"))
    probe_ref = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for _ in range(rounds):
        VideoProbe()(table)
    probe_ours = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    ref_clips = 0
    for path in paths:
        scenes = detect(str(path), ContentDetector())
        split_video_ffmpeg(str(path), scenes, output_dir=str(work / "psd"), show_output=False)
        ref_clips += len(scenes)
    split_ref = time.perf_counter() - started
    started = time.perf_counter()
    out = pa.concat_tables([SceneSplit()(table.slice(i, 4)) for i in range(0, table.num_rows, 4)])
    split_ours = time.perf_counter() - started
    ours_clips = out.num_rows - table.num_rows
    require_tool("ffmpeg")
    return [
        ("video: video_probe_v1 vs ffmpeg.probe", n / probe_ours, n / probe_ref, "videos/s", "ffprobe either way"),
        (
            "video: video_scenes_v1 vs PySceneDetect",
            n / split_ours,
            n / split_ref,
            "videos/s",
            f"clips {ours_clips} vs {ref_clips}; detect + libx264 clips",
        ),
    ]


def _clip_pairs(n: int, folder: Path) -> pa.Table:
    """``n`` JPEG pictures of varied sizes, each with a caption, as image records pointing at the files."""
    from PIL import Image

    from fusionforge.pipelines.core import schema as S

    folder.mkdir()
    rng = np.random.default_rng(3)
    words = random.Random(3)
    rows = []
    for i in range(n):
        w, h = int(rng.integers(200, 640)), int(rng.integers(200, 640))
        y, x = np.mgrid[0:h, 0:w]
        channels = [np.sin(x / rng.uniform(5, 40) + y / rng.uniform(5, 40) + c) * 80 + 128 for c in range(3)]
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8)).save(path, format="JPEG", quality=88)
        item = {
            "kind": "image",
            "uri": str(path),
            "offset": None,
            "size": path.stat().st_size,
            "bytes": None,
            "sha256": None,
            "format": "jpeg",
            "width": w,
            "height": h,
        }
        caption = "a photo of " + " ".join(words.choices(ZIPF_WORDS, k=words.randint(4, 14)))
        rows.append(
            {
                S.ID: f"c/{i}",
                S.SOURCE: "c",
                S.MODALITY: "image",
                S.TEXT: caption,
                S.MEDIA: [item],
                S.INPUT_FILE: str(path),
                S.INPUT_POSITION: 0,
            }
        )
    return S.validate(pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA))


def _clip_stage_pass(table: pa.Table, model_name: str, weights: Path) -> tuple[float, float, np.ndarray]:
    """(scoring seconds, model-load seconds, scores) of ``image_clip_score_v1`` on the in-process executor."""
    from fusionforge.filters.image.clip_score import ImageClipScore
    from fusionforge.pipelines.core.runner import InProcessExecutor
    from fusionforge.pipelines.core.source import Source
    from fusionforge.pipelines.core.stage import StageSpec

    class TableSource(Source):
        def partitions(self) -> list[int]:
            return [0]

        def read(self, partition: int):
            yield table

    loads: list[float] = []

    class TimedLoad(ImageClipScore):
        """The stage, timing its construction (the model load) so the rate can leave it out."""

        def __init__(self, **params) -> None:
            started = time.perf_counter()
            super().__init__(**params)
            loads.append(time.perf_counter() - started)

    written: dict[str, pa.Table] = {}

    def writer(partition: int, rows: pa.Table) -> dict:
        written["rows"] = rows
        return {"partition": partition, "rows": rows.num_rows}

    spec = StageSpec(TimedLoad, {"model": model_name, "pretrained": str(weights), "device": "cpu"})
    started = time.perf_counter()
    InProcessExecutor().run(TableSource(), [spec], writer)  # builds the stage (loads the model), then scores
    seconds = time.perf_counter() - started - loads[0]
    scores = np.array(written["rows"].column("image_clip_score_v1__score").to_pylist(), dtype=np.float64)
    return seconds, loads[0], scores


def _clip_reference_pass(
    table: pa.Table, model_name: str, weights: Path, batch: int
) -> tuple[float, float, np.ndarray]:
    """The same with open_clip alone: open, preprocess, encode both towers, cosine, ``batch`` pairs at a time."""
    import open_clip
    import torch
    from PIL import Image

    from fusionforge.pipelines.core import schema as S

    paths = [m[0]["uri"] for m in table.column(S.MEDIA).to_pylist()]
    captions = table.column(S.TEXT).to_pylist()
    started = time.perf_counter()
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=str(weights), device="cpu")
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    scores = []
    for i in range(0, len(paths), batch):
        pixels = []
        for path in paths[i : i + batch]:
            with Image.open(path) as image:
                pixels.append(preprocess(image.convert("RGB")))
        with torch.no_grad():
            image_emb = torch.nn.functional.normalize(model.encode_image(torch.stack(pixels)), dim=-1)
            text_emb = torch.nn.functional.normalize(model.encode_text(tokenizer(captions[i : i + batch])), dim=-1)
        scores.append((image_emb * text_emb).sum(dim=-1).numpy())
    return time.perf_counter() - started, load_s, np.concatenate(scores)


def bench_clip(n: int, work: Path, model_name: str = "ViT-B-32") -> list[tuple]:
    import open_clip
    import torch
    from safetensors.torch import save_file

    from fusionforge.filters.image.clip_score import ImageClipScore

    torch.set_num_threads(1)  # one core, as a 1-CPU Ray actor gets (Ray sets OMP_NUM_THREADS=1)
    torch.manual_seed(0)
    weights = work / f"{model_name}-random.safetensors"
    save_file(open_clip.create_model(model_name, pretrained=None).state_dict(), str(weights))
    table = _clip_pairs(n, work / "clip")
    batch = ImageClipScore.resources.batch_size
    ours, ref = [], []
    for side in ("ours", "ref", "ref", "ours"):  # ABBA, best of two each: less sensitive to other load
        if side == "ours":
            ours.append(_clip_stage_pass(table, model_name, weights))
        else:
            ref.append(_clip_reference_pass(table, model_name, weights, batch))
    diff = float(np.max(np.abs(ours[0][2] - ref[0][2])))
    ours_s, ref_s = min(r[0] for r in ours), min(r[0] for r in ref)
    ours_load, ref_load = min(r[1] for r in ours), min(r[1] for r in ref)
    return [
        (
            f"CLIP: image_clip_score_v1 vs raw open_clip ({model_name})",
            n / ours_s,
            n / ref_s,
            "images/s",
            f"CPU, 1 thread, batch {batch}; model load {ours_load:.1f}s vs {ref_load:.1f}s, not in the rates; "
            f"max |score diff| {diff:.1e}",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--clip-images", type=int, default=64, help="image-text pairs for CLIP (0: skip)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ff-bench-filters-"))
    try:
        rows = bench_text(synthetic_docs(args.docs))
        rows += bench_fasttext(args.lines, work)
        rows += bench_images(args.images, work)
        rows += bench_video(args.videos, work)
        rows += bench_clip(args.clip_images, work) if args.clip_images else []
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'what':46} {'fusionforge':>12} {'reference':>12} {'unit':>9} {'ratio':>7}  note")
    for name, ours, ref, unit, note in rows:
        print(f"{name:46} {ours:12,.1f} {ref:12,.1f} {unit:>9} {ours / ref:7.2f}  {note}")
    print("\nratio = fusionforge rate / reference rate, same inputs, same process (one core)")


if __name__ == "__main__":
    sys.exit(main())
