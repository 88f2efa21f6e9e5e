"""Near-duplicate images: fusionforge's bit-sampling LSH versus all pairs in numpy, in one run.

Images: busy synthetic photos (waves, noise, discs) and flat drawings (a few shapes on a plain
background: strongly correlated pHash bits), half each, plus one copy per ten originals (resized,
JPEG re-encoded, or cropped by 2-5%). Every image gets fusionforge's hashes (pHash of the image and
of its nine 3% crops). Then, for the same hashes:

1. fusionforge: ``hash_band_rows`` + ``hamming_matches`` (44 bands of 16 bits at 8 bits; own hash
   stored, crops probe), as the dedupe pipeline runs them in each shuffle partition;
2. the reference a user would write: numpy all pairs, every image's own hash against every hash
   (own and crops) of every other image, in blocks;

and reports seconds, images/s (hashing included), hash comparisons (also as a fraction of the
n^2 / 2 image pairs), the comparisons the earlier 9-chunk pigeonhole buckets needed (counted),
and the recall of the reference's pairs (fusionforge checks exact distances: no false pairs).
Uniform random hashes give the same cost columns for comparison.

    python bench/image_dedupe.py --images 2000 8000
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

MAX_DISTANCE = 8


def photo(rng: np.random.Generator, size: int = 96) -> Image.Image:
    """Two waves, noise and a few discs."""
    y, x = np.mgrid[0:size, 0:size]
    base = np.sin(x / rng.uniform(5, 40) + rng.uniform(0, 6)) + np.cos(y / rng.uniform(5, 40) + rng.uniform(0, 6))
    pixels = np.stack([base * 60 + 128 + rng.normal(0, 12, base.shape) for _ in range(3)], axis=-1)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.integers(0, size - 20, 2)
        width = int(rng.integers(10, size // 2))
        draw.ellipse(
            (int(x0), int(y0), int(x0) + width, int(y0) + width), fill=tuple(int(c) for c in rng.integers(0, 255, 3))
        )
    return image


def copy_of(image: Image.Image, kind: int, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    if kind == 0:
        return image.resize((w * 2, h * 2))
    if kind == 1:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=60)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    cut = rng.uniform(0.02, 0.05)
    return image.crop((round(w * cut), round(h * cut * (kind == 3)), w, h))


def make_images(n: int, seed: int = 0) -> list[Image.Image]:
    from fusionforge.pipelines.demo_corpus import draw_shapes

    rng, shapes = np.random.default_rng(seed), random.Random(seed)
    originals = n - n // 11
    images = [
        photo(rng) if i % 2 else draw_shapes(shapes, shapes.choice([(96, 72), (72, 96), (96, 96)]))[0]
        for i in range(originals)
    ]
    images += [copy_of(images[i * 10], i % 4, rng) for i in range(n - originals)]
    return images


def all_pairs(hashes: np.ndarray, max_distance: int) -> set[tuple[int, int]]:
    """Every pair whose own hash is within ``max_distance`` of any hash (own or crop) of the other."""
    n, k = hashes.shape
    block = max(1, (1 << 24) // (n * k))
    found = []
    for lo in range(0, n, block):
        distance = np.bitwise_count(hashes[lo : lo + block, 0][:, None, None] ^ hashes[None]).min(axis=2)
        i, j = np.nonzero(distance <= max_distance)
        i = i + lo
        off = i != j
        found.append(np.stack([np.minimum(i, j)[off], np.maximum(i, j)[off]], axis=1))
    pairs = np.unique(np.concatenate(found), axis=0) if found else np.empty((0, 2), int)
    return set(map(tuple, pairs.tolist()))


def chunk_comparisons(hashes: np.ndarray, max_distance: int) -> int:
    """What the earlier scheme compared: ``d + 1`` contiguous chunks, every hash in them, each own hash
    against every row of its chunk bucket."""
    edges = np.linspace(0, 64, max_distance + 2).round().astype(int)
    total = 0
    for lo, hi in zip(edges[:-1], edges[1:]):
        chunks = (hashes >> np.uint64(lo)) & np.uint64((1 << int(hi - lo)) - 1)
        values, counts = np.unique(chunks.ravel(), return_counts=True)
        total += int(counts[np.searchsorted(values, chunks[:, 0])].sum()) - len(hashes)
    return total


def lsh(hashes: np.ndarray, max_distance: int):
    from fusionforge.filters.dedup.hamming import band_masks, hamming_band_params, hamming_matches, hash_band_rows

    n = len(hashes)
    exact = np.stack([np.arange(n, dtype=np.uint64), np.zeros(n, np.uint64)], axis=1)
    rows = hash_band_rows(
        1, np.arange(n), exact, hashes, band_masks(*hamming_band_params(max_distance)), np.ones(n, bool)
    )
    return hamming_matches(rows, max_distance), len(rows["item"])


def measure(name: str, hashes: np.ndarray, hash_seconds: float | None) -> dict[str, object]:
    n = len(hashes)
    start = time.perf_counter()
    found, band_rows = lsh(hashes, MAX_DISTANCE)
    lsh_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reference = all_pairs(hashes, MAX_DISTANCE)
    reference_seconds = time.perf_counter() - start
    pairs = set(zip(found.a.tolist(), found.b.tolist()))
    assert pairs <= reference, "a pair beyond the threshold"
    image_pairs = n * (n - 1) / 2
    return {
        "set": name,
        "images": n,
        "hash_seconds": hash_seconds,
        "lsh_seconds": lsh_seconds,
        "reference_seconds": reference_seconds,
        "band_rows_per_image": band_rows / n,
        "lsh_comparisons": found.comparisons,
        "reference_comparisons": n * hashes.size,
        "chunk_comparisons": chunk_comparisons(hashes, MAX_DISTANCE),
        "image_pairs": image_pairs,
        "reference_pairs": len(reference),
        "recall": len(pairs & reference) / len(reference) if reference else 1.0,
        "skipped": found.skipped,
    }


def print_tables(results: list[dict[str, object]]) -> None:
    print("\nSpeed (one process; images/s include hashing, the same for both):\n")
    print(
        "| images | hashing images/s | fusionforge LSH s | all pairs s | fusionforge images/s | all pairs images/s "
        "| fusionforge is |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        if r["hash_seconds"] is None:
            continue
        ours = r["images"] / (r["hash_seconds"] + r["lsh_seconds"])
        theirs = r["images"] / (r["hash_seconds"] + r["reference_seconds"])
        print(
            f"| {r['images']:,} | {r['images'] / r['hash_seconds']:,.0f} | {r['lsh_seconds']:.2f} | "
            f"{r['reference_seconds']:.2f} | {ours:,.0f} | {theirs:,.0f} | "
            f"{r['reference_seconds'] / r['lsh_seconds']:.2f}x (matching), {ours / theirs:.2f}x (with hashing) |"
        )
    print("\nCost and recall (hash comparisons; n^2 / 2 = image pairs):\n")
    print(
        "| hashes | images | band rows / image | fusionforge comparisons | / (n^2 / 2) | all pairs comparisons "
        "| / (n^2 / 2) | earlier 9-chunk buckets / (n^2 / 2) | reference pairs | recall |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        pairs = r["image_pairs"]
        print(
            f"| {r['set']} | {r['images']:,} | {r['band_rows_per_image']:.0f} | {r['lsh_comparisons']:,} | "
            f"{r['lsh_comparisons'] / pairs:.4f} | {r['reference_comparisons']:,} | "
            f"{r['reference_comparisons'] / pairs:.1f} | {r['chunk_comparisons'] / pairs:.3f} | "
            f"{r['reference_pairs']:,} | {r['recall']:.4f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2_000, 8_000])
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    from fusionforge.filters.dedup.image_hash import image_hashes

    results = []
    for n in args.images:
        images = make_images(n)
        start = time.perf_counter()
        hashes = np.stack([image_hashes(image) for image in images])
        hash_seconds = time.perf_counter() - start
        results.append(measure("pHash of photos + drawings", hashes, hash_seconds))
        uniform = np.random.default_rng(n).integers(0, 2**64, hashes.shape, dtype=np.uint64)
        results.append(measure("uniform random", uniform, None))
        print(json.dumps(results[-2:], indent=1), flush=True)
    print_tables(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
