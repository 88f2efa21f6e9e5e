"""The soak's corpus: N records of every kind ``shard`` reads at scale, with planted duplicates and faults.

About 72% plain-text documents (JSONL), 22% image-text pairs (WebDataset tars of small JPEGs), 5%
interleaved documents (Parquet with inline images) and a few hundred short videos (a folder with
caption sidecars). Planted for dedupe: exact and near copies of documents and of pair images; for
the ledger: malformed JSON lines, rows without text, undecodable images, images too small for the
filter, interleaved documents pointing at a missing file and truncated videos. Deterministic under
a seed; the record count is exact (one input record per JSON line, tar sample, Parquet row, video).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from fusionforge.pipelines.demo_corpus import make_video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedupe import _word  # noqa: E402  (bench/dedupe.py's made-up words)

STOP = "the of and to in a is that for it as with was on be by at this have from".split()
PER_FILE = 50_000  # records per JSONL file / tar / Parquet file, so the corpus has many partitions
CHUNK = 1000  # documents / images drawn at once


@dataclass
class Planted:
    """How many records of each kind were written, and the faults planted among them."""

    counts: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(self.counts.values())


def split(records: int) -> dict[str, int]:
    """Records per kind: a few hundred videos at 1M (one per 3,000 records, at least 6), 5% interleaved, 22% pairs."""
    videos = max(6, min(400, records // 3000))
    interleaved = records * 5 // 100
    pairs = records * 22 // 100
    return {
        "text": records - videos - interleaved - pairs,
        "pairs": pairs,
        "interleaved": interleaved,
        "videos": videos,
    }


def make_soak_corpus(root: Path, records: int, seed: int = 0) -> tuple[dict[str, str], Planted]:
    """Write the corpus under ``root``; return ``{source: path}`` for ``shard`` and what was planted.

    A corpus already written there for the same size and seed (its ``planted.json`` says so) is reused:
    at a million records writing it takes minutes.
    """
    done = root / "planted.json"
    if done.exists():
        saved = json.loads(done.read_text())
        if (saved["records"], saved["seed"]) == (records, seed):
            return saved["sources"], Planted(saved["counts"], saved["faults"])
    shutil.rmtree(root, ignore_errors=True)  # no file of another size or a cut-short run stays among the inputs
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    vocab = np.array([_word(i) for i in range(20_000)])
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    weights /= weights.sum()
    sizes = split(records)
    planted = Planted(counts=dict(sizes))
    text = _texts(root / "text", sizes["text"], rng, vocab, weights, planted)
    pairs = _pairs(root / "pairs", sizes["pairs"], rng, vocab, planted)
    docs = _interleaved(root / "docs", sizes["interleaved"], rng, vocab, weights, planted)
    clips = _videos(root / "clips", sizes["videos"], planted)
    sources = {"text": str(text), "pairs": str(pairs), "docs": str(docs), "clips": str(clips)}
    record = {"records": records, "seed": seed, "sources": sources, "counts": planted.counts, "faults": planted.faults}
    done.write_text(json.dumps(record))  # last: a corpus cut short is written again
    return sources, planted


def _documents(rng: np.random.Generator, vocab: np.ndarray, weights: np.ndarray, count: int, lo: int, hi: int):
    """``count`` documents of ``lo``-``hi`` made-up words (drawn in one call: per-document draws are slow), with
    English stop words between them (Gopher's quality rule wants some)."""
    lengths = rng.integers(lo, hi, count)
    words = vocab[rng.choice(len(vocab), int(lengths.sum()), p=weights)]
    stops = rng.random(len(words)) < 0.3
    words[stops] = np.array(STOP)[rng.integers(0, len(STOP), int(stops.sum()))]
    return [chunk.tolist() for chunk in np.split(words, np.cumsum(lengths)[:-1])]


def _sentences(words: list[str]) -> str:
    return " ".join(" ".join(words[i : i + 12]).capitalize() + "." for i in range(0, len(words), 12))


def _texts(folder: Path, n: int, rng, vocab, weights, planted: Planted) -> Path:
    """JSONL files; one row in 50 is a near copy of an earlier one (0-5% of its words changed), one in 50 exact."""
    folder.mkdir(parents=True, exist_ok=True)
    recent: list[list[str]] = []
    fresh: list[list[str]] = []
    handle = None
    for i in range(n):
        if i % PER_FILE == 0:
            if handle:
                handle.close()
            handle = open(folder / f"part-{i // PER_FILE:04d}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        if not fresh:
            fresh = _documents(rng, vocab, weights, CHUNK, 30, 160)
        kind = i % 100
        if kind == 37:  # a malformed line (one record, failed at read)
            handle.write(f'{{"id": "t{i:08d}", "text": "an unterminated string}}\n')
            _count(planted, "malformed_json")
            continue
        if i % 1000 == 61:  # a row without text
            handle.write(json.dumps({"id": f"t{i:08d}", "title": "no text here"}) + "\n")
            _count(planted, "missing_text")
            continue
        if recent and kind in (11, 53):  # exact copy
            words = recent[int(rng.integers(len(recent)))]
            _count(planted, "text_exact_copy")
        elif recent and kind in (23, 71):  # near copy
            words = list(recent[int(rng.integers(len(recent)))])
            for j in np.flatnonzero(rng.random(len(words)) < rng.uniform(0.0, 0.05)):
                words[j] = str(vocab[int(rng.integers(len(vocab)))])
            _count(planted, "text_near_copy")
        else:
            words = fresh.pop()
            recent = [*recent[-199:], words]
        handle.write(json.dumps({"id": f"t{i:08d}", "text": _sentences(words), "url": f"https://t.example/{i}"}) + "\n")
    if handle:
        handle.close()
    return folder


def _count(planted: Planted, fault: str, add: int = 1) -> None:
    planted.faults[fault] = planted.faults.get(fault, 0) + add


def _images(rng: np.random.Generator, count: int, side: int) -> list[bytes]:
    """``count`` small JPEGs of one size, made in one go: a random 8x8 grid of colours blown up, plus noise.

    Random coarse blocks give random low frequencies, so perceptual hashes differ between draws (smooth
    gradients would not: their hashes collide and dedupe would see thousands of near copies).
    """
    grid = rng.integers(0, 256, (count, 8, 8, 3), dtype=np.int16)
    cells = np.arange(side) * 8 // side
    pixels = grid[:, cells][:, :, cells] + rng.integers(-12, 12, (count, side, side, 3), dtype=np.int16)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    out = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=80)
        out.append(buffer.getvalue())
    return out


def _caption(rng, vocab) -> str:
    return "a picture of " + " ".join(vocab[rng.integers(0, 2000, int(rng.integers(3, 10)))])


def _pairs(folder: Path, n: int, rng, vocab, planted: Planted) -> Path:
    """WebDataset tars of jpg + txt samples; planted: exact image copies, undecodable bytes, too-small images."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = b""
    fresh: list[bytes] = []
    tar = None
    for i in range(n):
        if i % PER_FILE == 0:
            if tar:
                tar.close()
            tar = tarfile.open(folder / f"pairs-{i // PER_FILE:04d}.tar", "w")  # noqa: SIM115
        if not fresh:
            fresh = _images(rng, CHUNK, int(rng.integers(40, 72)))
        kind = i % 200
        if kind == 17:
            image = bytes(rng.integers(0, 256, 1500, dtype=np.uint8))  # not an image
            _count(planted, "undecodable_image")
        elif kind in (29, 131) and previous:
            image = previous  # the same picture under another caption
            _count(planted, "image_exact_copy")
        elif kind == 83:
            image = _images(rng, 1, 24)[0]  # below the filter's smallest side
            _count(planted, "small_image")
        else:
            image = previous = fresh.pop()
        _add(tar, f"p{i:08d}.jpg", image)
        _add(tar, f"p{i:08d}.txt", _caption(rng, vocab).encode())
    if tar:
        tar.close()
    return folder


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    tar.addfile(info, io.BytesIO(data))


def _interleaved(folder: Path, n: int, rng, vocab, weights, planted: Planted) -> Path:
    """Parquet files of OBELICS-like documents (parts with inline image bytes); some point at a missing file."""
    folder.mkdir(parents=True, exist_ok=True)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    part = pa.struct([("type", pa.string()), ("text", pa.string()), ("image", image_type)])
    schema = pa.schema([("id", pa.string()), ("parts", pa.list_(part)), ("url", pa.string())])
    per_file = PER_FILE // 5
    rows: list[dict] = []
    texts: list[list[str]] = []
    images: list[bytes] = []
    for i in range(n):
        if not texts:
            texts = _documents(rng, vocab, weights, CHUNK, 40, 120)
        if len(images) < 2:
            images += _images(rng, CHUNK, int(rng.integers(64, 96)))
        parts = [{"type": "text", "text": _sentences(texts.pop())}]
        for j in range(int(rng.integers(1, 3))):
            if i % 500 == 7 and j == 0:
                image = {"bytes": None, "path": "missing/never-written.jpg"}
                _count(planted, "missing_file")
            else:
                image = {"bytes": images.pop(), "path": f"d{i}_{j}.jpg"}
            parts += [{"type": "image", "image": image}, {"type": "text", "text": _caption(rng, vocab) + "."}]
        rows.append({"id": f"d{i:08d}", "parts": parts, "url": f"https://d.example/{i}"})
        if len(rows) == per_file or i == n - 1:
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / f"docs-{i // per_file:04d}.parquet")
            rows = []
    return folder


def _videos(folder: Path, n: int, planted: Planted) -> Path:
    """1-2 s clips from ffmpeg's test sources (a few distinct ones copied with new names); one in 50 truncated."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = ("testsrc", "smptebars", "rgbtestsrc", "testsrc2", "yuvtestsrc", "pal75bars")
    originals = []
    for k, source in enumerate(sources):
        path = folder / f"_src{k}.mp4"
        make_video(path, source, seconds=1.0 + 0.5 * (k % 3), size="96x72", rate=10)
        originals.append(path.read_bytes())
        path.unlink()
    for i in range(n):
        data = originals[i % len(originals)]
        if i % 50 == 3:
            data = data[: len(data) * 6 // 10]
            _count(planted, "truncated_video")
        (folder / f"v{i:05d}.mp4").write_bytes(data)
        (folder / f"v{i:05d}.txt").write_text(f"test pattern clip {i}")
    return folder
