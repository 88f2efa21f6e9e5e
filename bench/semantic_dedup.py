"""Semantic dedup: fusionforge's SemDeDup search versus semhash, with a brute-force all-pairs cosine for recall.

Texts: made-up documents of 40 words over a vocabulary of synonym groups, plus one copy per five
originals that swaps every word for a synonym and replaces a random 0-35% of its words (cosines from
about 0.6 to 1.0, so the threshold cuts through the copies). They are embedded once with a model2vec
model built by the tests' ``semantic_fixtures.build_static_model`` (a word-level tokenizer and one
256-dim vector per word, synonyms close), and every
method gets the SAME embeddings (unit-norm float32) and the same cosine threshold:

1. fusionforge: ``train_centroids`` on a sample of at most 100k rows (spherical k-means, faiss), then
   ``nearest_centroid`` and ``cluster_pairs`` inside each cluster (k = items / 1,000), then the union-find,
   as ``dedupe --semantic`` runs them (without the shard reading and writing around them);
2. semhash (``SemHash.from_embeddings`` + ``self_deduplicate``, its usearch ANN index), what a user of
   model2vec would otherwise run;
3. the truth: all-pairs cosine, brute force, for a sample of 2,000 query items against every item.

Each method runs in its own process (peak memory is that process's maximum RSS) and reports seconds,
items/s and recall: of pairs (query, other) at or above the threshold, the fraction found
(fusionforge reports pairs); of queries that have such a pair, the fraction marked as part of a
duplicate group (both methods). Both methods compute exact cosines for what they report, so there
are no false pairs to count.

    python bench/semantic_dedup.py --items 10000 100000
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "filters" / "dedup"))

from semantic_fixtures import build_static_model, vocabulary  # noqa: E402  the tests' controlled model2vec

THRESHOLD = 0.9
QUERIES = 2000
DIM = 256


def texts(items: int, groups: list[list[str]], seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < items:
        concepts = [rng.randrange(len(groups)) for _ in range(40)]
        out.append(" ".join(groups[c][0] for c in concepts))
        if len(out) % 5 == 0 and len(out) < items:
            changed = concepts[:]
            for i in rng.sample(range(40), int(40 * rng.uniform(0, 0.35))):
                changed[i] = rng.randrange(len(groups))
            rng.shuffle(changed)
            out.append(" ".join(rng.choice(groups[c]) for c in changed))
    return out


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: ru_maxrss would carry the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_fusionforge(x: np.ndarray, probes: int = 1) -> dict:
    from fusionforge.filters.dedup.semantic import cluster_pairs, nearest_centroid, sample_rows, train_centroids
    from fusionforge.filters.dedup.union_find import connected_components

    started = time.perf_counter()
    k = max(1, round(len(x) / 1000))
    centroids = train_centroids(x[sample_rows(len(x), 100_000, seed=0)], k, 20, seed=0)
    assigned = nearest_centroid(x, centroids, probes)  # rows x probes
    items = np.repeat(np.arange(len(x), dtype=np.int64), probes)
    a, b, _ = cluster_pairs(np.repeat(x, probes, axis=0), items, assigned.ravel(), THRESHOLD)
    nodes, _ = connected_components(a, b)
    return {"seconds": time.perf_counter() - started, "pairs": np.stack([a, b], 1).tolist(), "grouped": nodes.tolist()}


def run_semhash(x: np.ndarray) -> dict:
    from semhash import SemHash

    class Unused:  # from_embeddings wants an encoder; self_deduplicate never calls it
        def encode(self, *args, **kwargs):
            raise AssertionError("semhash encoded again")

    records = [{"id": str(i)} for i in range(len(x))]
    started = time.perf_counter()
    semhash = SemHash.from_embeddings(x, records, model=Unused(), columns=["id"])
    result = semhash.self_deduplicate(threshold=THRESHOLD)
    seconds = time.perf_counter() - started
    grouped = {int(d.record["id"]) for d in result.filtered} | {int(d.duplicate_of["id"]) for d in result.filtered}
    return {"seconds": seconds, "grouped": sorted(grouped)}


def run_truth(x: np.ndarray) -> dict:
    started = time.perf_counter()
    queries = np.sort(np.random.default_rng(2).choice(len(x), size=min(QUERIES, len(x)), replace=False))
    pairs = []
    for start in range(0, len(queries), 256):
        block = queries[start : start + 256]
        similarity = x[block] @ x.T
        similarity[np.arange(len(block)), block] = -1  # not itself
        for q, j in zip(*np.nonzero(similarity >= THRESHOLD)):
            pairs.append((int(block[q]), int(j)))
    return {"seconds": time.perf_counter() - started, "queries": queries.tolist(), "pairs": pairs}


def child(method: str, embeddings: str) -> None:
    x = np.load(embeddings)
    methods = {
        "fusionforge": run_fusionforge,
        "fusionforge-2probes": lambda x: run_fusionforge(x, probes=2),
        "semhash": run_semhash,
        "truth": run_truth,
    }
    cpu = time.process_time()
    result = methods[method](x)
    result["cpu_seconds"] = time.process_time() - cpu  # every thread's CPU time: fair on a loaded machine
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


def in_child(method: str, embeddings: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", method, str(embeddings)], capture_output=True, text=True, timeout=3600
    )
    if done.returncode:
        raise RuntimeError(f"{method} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(items: int, folder: Path) -> None:
    groups = vocabulary(concepts=max(2000, items // 10), syllables=4)
    model_dir = build_static_model(folder / f"model-{items}", groups=groups, dim=DIM)
    corpus = texts(items, groups)
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(model_dir, force_download=False)
    started = time.perf_counter()
    x = model.encode(corpus, normalize=True, use_multiprocessing=False).astype(np.float32)
    embed_s = time.perf_counter() - started
    path = folder / f"embeddings-{items}.npy"
    np.save(path, x)
    truth, sh = in_child("truth", path), in_child("semhash", path)
    ff, ff2 = in_child("fusionforge", path), in_child("fusionforge-2probes", path)
    queries = set(truth["queries"])
    true_pairs = {frozenset(p) for p in truth["pairs"]}
    with_dup = {q for p in truth["pairs"] for q in p if q in queries}

    def pair_recall(result: dict) -> float:
        return len(true_pairs & {frozenset(p) for p in result["pairs"]}) / max(1, len(true_pairs))

    def item_recall(result: dict) -> float:
        return len(with_dup & set(result["grouped"])) / max(1, len(with_dup))

    print(f"\n{items:,} items, {DIM}-dim model2vec embeddings, cosine >= {THRESHOLD}")
    print(f"  embedding (model2vec encode, shared by all): {embed_s:.1f} s, {items / embed_s:,.0f} items/s")
    print(
        f"  truth: all pairs of {len(queries):,} queries x {items:,} items: {truth['seconds']:.1f} s, "
        f"{len(true_pairs):,} pairs, {len(with_dup):,} queries with a duplicate, peak {truth['peak_mb']:,} MB"
    )
    for name, result in (("fusionforge", ff), ("fusionforge, 2 probes", ff2)):
        print(
            f"  {name}: {result['seconds']:.2f} s, {items / result['seconds']:,.0f} items/s, pair recall "
            f"{pair_recall(result):.3f}, item recall {item_recall(result):.3f}, {len(result['pairs']):,} pairs, "
            f"peak {result['peak_mb']:,} MB, {result['cpu_seconds']:.1f} CPU-s; vs semhash: "
            f"{sh['seconds'] / result['seconds']:.2f}x items/s, {sh['cpu_seconds'] / result['cpu_seconds']:.2f}x "
            f"fewer CPU-seconds, {result['peak_mb'] / sh['peak_mb']:.2f}x memory"
        )
    print(
        f"  semhash: {sh['seconds']:.2f} s, {items / sh['seconds']:,.0f} items/s, item recall {item_recall(sh):.3f}, "
        f"peak {sh['peak_mb']:,} MB, {sh['cpu_seconds']:.1f} CPU-s"
    )
    all_pairs_estimate = truth["seconds"] * len(x) / len(queries)
    print(
        f"  brute-force all pairs of every item (extrapolated from the truth's rate): {all_pairs_estimate:.1f} s, "
        f"{all_pairs_estimate / ff['seconds']:.1f}x fusionforge's time"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ff-semantic-bench-") as tmp:
        for items in args.items:
            bench(items, Path(tmp))


if __name__ == "__main__":
    main()
