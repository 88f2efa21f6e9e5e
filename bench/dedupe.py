"""Near-duplicate text dedup: fusionforge versus datasketch and datatrove on one generated corpus.

Corpus: ``--docs`` documents of 100-500 Zipf-distributed words; one in ten gets a copy that is
exact or has 1, 2, 5, 10 or 20% of its words replaced. Measured in one run:

1. signature throughput (one process): fusionforge's vectorised MinHash versus datasketch's
   per-document ``update()`` loop and ``MinHash.bulk`` (same word 5-grams, 128 permutations);
2. end to end: ``fusionforge dedupe`` on Ray (2 CPUs, text only, from the sharded corpus) versus
   datatrove's 4-stage MinHash pipeline (LocalPipelineExecutor, 2 workers) with its default spaCy
   word tokenizer and with a whitespace tokenizer, and versus a plain datasketch pipeline
   (``MinHash.bulk`` + ``MinHashLSH`` + union-find, one process);
3. precision and recall of each against the pairs whose exact Jaccard is >= the threshold,
   computed by brute force on a sample of whole duplicate families plus random documents.

    python bench/dedupe.py --docs 100000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from fusionforge.pipelines.core.settings import RunSettings

THRESHOLD = 0.8
NUM_PERM = 128
RATES = (0.0, 0.01, 0.02, 0.05, 0.10, 0.20)
WORD = re.compile(r"\w+")


def make_corpus(folder: Path, n: int, files: int = 8, seed: int = 0) -> dict[str, list[str]]:
    """Write ``n`` documents as JSONL files (``id``, ``text``); return each family's ids (original first)."""
    rng = np.random.default_rng(seed)
    vocab = np.array([_word(i) for i in range(50_000)])  # letters only: datatrove folds digits to 0
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    weights /= weights.sum()
    cdf = weights.cumsum()
    cdf /= cdf[-1]

    def draw(size: int) -> np.ndarray:
        """``rng.choice(len(vocab), size, p=weights)``, draw for draw (numpy's own method), without
        summing the 50,000 weights again per call: a million documents took an hour that way."""
        return cdf.searchsorted(rng.random(size), side="right")

    originals = next(o for o in range(n * 10 // 11, n + 1) if o + -(-o // 11) >= n)  # one copy per 11 originals
    families: dict[str, list[str]] = {}
    folder.mkdir(parents=True, exist_ok=True)
    outs = [open(folder / f"part-{k:02d}.jsonl", "w", encoding="utf-8") for k in range(files)]  # noqa: SIM115
    written = 0
    for i in range(originals):
        words = vocab[draw(rng.integers(100, 500))]
        doc_id = f"d{i:07d}"
        outs[i * files // originals].write(json.dumps({"id": doc_id, "text": " ".join(words) + "."}) + "\n")
        written += 1
        if i % 11 == 0 and written < n:
            rate = RATES[(i // 11) % len(RATES)]
            copy = words.copy()
            edits = rng.random(len(copy)) < rate
            copy[edits] = vocab[draw(int(edits.sum()))]
            copy_id = f"{doc_id}-c{int(rate * 100):02d}"
            other_file = outs[(i * files // originals + files // 2) % files]  # copies land in another file
            other_file.write(json.dumps({"id": copy_id, "text": " ".join(copy) + "."}) + "\n")
            families[doc_id] = [doc_id, copy_id]
            written += 1
    for out in outs:
        out.close()
    if written != n:
        raise RuntimeError(f"wrote {written} documents instead of {n}")
    return families


def _word(index: int) -> str:
    """A pronounceable-enough distinct word for each index (consonant-vowel syllables)."""
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    word, index = "", index + 85
    while index:
        index, syllable = divmod(index, len(consonants) * len(vowels))
        word += consonants[syllable // len(vowels)] + vowels[syllable % len(vowels)]
    return word


def read_jsonl(folder: Path) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                ids.append(row["id"])
                texts.append(row["text"])
    return ids, texts


def shingles(text: str) -> list[bytes]:
    words = WORD.findall(text.lower())
    return [" ".join(words[i : i + 5]).encode() for i in range(max(1, len(words) - 4))]


# -- 1. signature throughput ------------------------------------------------------------------


def signature_throughput(texts: list[str]) -> dict[str, float]:
    from datasketch import MinHash

    from fusionforge.filters.dedup.minhash import TextSketcher

    out = {}
    sketcher = TextSketcher(num_perm=NUM_PERM)
    sketcher.sketch(texts[:50])  # warm-up: Arrow kernels, permutation tables
    MinHash.bulk([shingles(t) for t in texts[:50]], num_perm=NUM_PERM)
    start = time.perf_counter()
    for i in range(0, len(texts), 1000):
        sketcher.sketch(texts[i : i + 1000])
    out["fusionforge TextSketcher.sketch (batches of 1000)"] = len(texts) / (time.perf_counter() - start)
    sample = texts[: max(200, len(texts) // 10)]
    start = time.perf_counter()
    for text in sample:
        m = MinHash(num_perm=NUM_PERM)
        for shingle in shingles(text):
            m.update(shingle)
    out["datasketch per-document update() loop"] = len(sample) / (time.perf_counter() - start)
    start = time.perf_counter()
    MinHash.bulk([shingles(t) for t in texts], num_perm=NUM_PERM)
    out["datasketch MinHash.bulk"] = len(texts) / (time.perf_counter() - start)
    return out


# -- 2. end-to-end pipelines -----------------------------------------------------------------


def run_datasketch(ids: list[str], texts: list[str]) -> dict[str, int]:
    """The pipeline a datasketch user writes: bulk signatures, an LSH index, union-find over query hits."""
    from datasketch import MinHash, MinHashLSH

    signatures = MinHash.bulk([shingles(t) for t in texts], num_perm=NUM_PERM)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    with lsh.insertion_session() as session:
        for doc_id, m in zip(ids, signatures):
            session.insert(doc_id, m)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for doc_id, m in zip(ids, signatures):
        for other in lsh.query(m):
            a, b = find(doc_id), find(other)
            if a != b:
                parent.setdefault(a, a)
                parent.setdefault(b, b)
                parent[max(a, b)] = min(a, b)
    return {doc_id: hash(find(doc_id)) for doc_id in parent}


def run_datatrove(corpus: Path, work: Path, tokenizer: str, workers: int) -> dict[str, int]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Whitespace(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    language = Whitespace("en") if tokenizer == "whitespace" else "en"
    config = MinhashConfig()
    tasks = len(list(corpus.glob("*.jsonl")))  # datatrove splits work by file
    reader = JsonlReader(str(corpus), glob_pattern="*.jsonl", doc_progress=False)
    # datatrove writes its logs to ./logs when logging_dir is None: keep them in the scratch folder instead.
    common = {"logging_dir": str(work / "datatrove-logs"), "skip_completed": False}
    LocalPipelineExecutor(
        [reader, MinhashDedupSignature(str(work / "sigs"), config=config, language=language)],
        tasks=tasks,
        workers=workers,
        **common,
    ).run()
    LocalPipelineExecutor(
        [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)],
        tasks=config.num_buckets,
        workers=workers,
        **common,
    ).run()
    LocalPipelineExecutor(
        [MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config, save_cluster_id=True)],
        tasks=1,
        **common,
    ).run()
    LocalPipelineExecutor(
        [
            reader,
            MinhashDedupFilter(str(work / "remove"), exclusion_writer=JsonlWriter(str(work / "removed"))),
            JsonlWriter(str(work / "kept")),
        ],
        tasks=tasks,
        workers=workers,
        **common,
    ).run()
    return datatrove_clusters(corpus, work / "remove")


def datatrove_clusters(corpus: Path, remove: Path) -> dict[str, int]:
    """Cluster of each clustered document, from stage 3's ``.clusters`` files (rank = input file, as run above).

    Stage 4 only copies cluster ids into the documents of ranks that remove something, so the
    files are read directly: pairs of (document index in the rank's file, cluster id).
    """
    labels = {}
    for rank, path in enumerate(sorted(corpus.glob("*.jsonl"))):
        clusters = remove / f"{rank:06d}.clusters"
        if not clusters.exists():
            continue
        with open(path, encoding="utf-8") as handle:
            ids = [json.loads(line)["id"] for line in handle]
        values = np.frombuffer(clusters.read_bytes(), "<u4").reshape(-1, 2)
        labels.update({ids[doc]: int(cluster) for doc, cluster in values})
    return labels


def dedupe_only(src: Path, out: Path, executor: str, cpus: int) -> tuple[dict[str, int], dict]:
    """``fusionforge dedupe`` (text only) of an already sharded corpus: (cluster of each document, report)."""
    import pyarrow.parquet as pq

    from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe

    report = run_dedupe(
        DedupeConfig(
            input=str(src),
            output=str(out),
            images=False,
            videos=False,
            text_threshold=THRESHOLD,
            num_perm=NUM_PERM,
            run=RunSettings(executor=executor, num_cpus=cpus),
            shard_count=5000,
        )
    )
    clusters = pq.read_table(out / "clusters.parquet", columns=["member_id", "cluster"]).to_pylist()
    return {r["member_id"].split("/", 1)[1]: r["cluster"] for r in clusters}, report


def shard_corpus(corpus: Path, work: Path, cpus: int) -> float:
    """``fusionforge shard`` on Ray (the ingest every later step shares); its wall seconds."""
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    start = time.perf_counter()
    run_shard(
        ShardConfig(
            inputs=(f"bench={corpus}",),
            output=str(work / "in"),
            shard_count=5000,
            partition_mb=16,
            run=RunSettings(executor="ray", num_cpus=cpus),
        )
    )
    return time.perf_counter() - start


class PeakMemory:
    """Peak resident memory of this process and all its descendants (Ray's raylet and workers included),
    and the CPU seconds they all spent inside the block (``cpu_seconds``; a descendant's last 0.2 s may
    be missed when it exits between samples)."""

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self.psutil, self.interval, self.peak, self.driver_peak = psutil, interval, 0, 0
        self.cpu_seconds = 0.0
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        me = self.psutil.Process()
        while not self._stop.is_set():
            self._sample(me)
            self._stop.wait(self.interval)

    def _sample(self, me) -> None:
        try:
            total = me.memory_info().rss
            self.driver_peak = max(self.driver_peak, total)
            for child in me.children(recursive=True):
                with contextlib.suppress(self.psutil.Error):
                    total += child.memory_info().rss
                    times = child.cpu_times()
                    self._last[child.pid] = times.user + times.system
                    self._first.setdefault(child.pid, 0.0)  # started inside the block
            self.peak = max(self.peak, total)
        except self.psutil.Error:
            pass

    def __enter__(self) -> PeakMemory:
        me = self.psutil.Process()
        for child in me.children(recursive=True):  # processes already running count from now on
            with contextlib.suppress(self.psutil.Error):
                times = child.cpu_times()
                self._first[child.pid] = self._last[child.pid] = times.user + times.system
        self._driver_start = time.process_time()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(self.psutil.Process())
        descendants = sum(self._last[pid] - self._first.get(pid, 0.0) for pid in self._last)
        self.cpu_seconds = time.process_time() - self._driver_start + descendants


# -- 3. precision and recall -----------------------------------------------------------------


def sample_truth(
    ids: list[str], texts: list[str], families: dict[str, list[str]], size: int, seed: int = 1
) -> tuple[list[str], set[tuple[str, str]]]:
    """A sample of whole families plus random documents, and its pairs with exact Jaccard >= threshold."""
    rng = np.random.default_rng(seed)
    chosen_families = rng.choice(sorted(families), min(len(families), size // 3), replace=False)
    sample = {i for f in chosen_families for i in families[f]}
    sample |= set(rng.choice(ids, size - len(sample), replace=False).tolist())
    position = {doc_id: k for k, doc_id in enumerate(ids)}
    members = sorted(sample)
    sets = {m: set(shingles(texts[position[m]])) for m in members}
    index: dict[bytes, list[str]] = defaultdict(list)
    for m, s in sets.items():
        for shingle in s:
            index[shingle].append(m)
    candidates = set()
    for group in index.values():
        if len(group) < 50:
            candidates.update(combinations(sorted(group), 2))
    truth = {(a, b) for a, b in candidates if len(sets[a] & sets[b]) / len(sets[a] | sets[b]) >= THRESHOLD}
    return members, truth


def score(labels: dict[str, int], members: list[str], truth: set[tuple[str, str]]) -> tuple[float, float]:
    by_cluster: dict[int, list[str]] = defaultdict(list)
    for m in members:
        if m in labels:
            by_cluster[labels[m]].append(m)
    predicted = {pair for group in by_cluster.values() for pair in combinations(sorted(group), 2)}
    hits = len(predicted & truth)
    return hits / max(len(predicted), 1), hits / max(len(truth), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--sig-docs", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=3_000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        help="fusionforge-local, datatrove-spacy, datatrove-whitespace, datasketch",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    work = Path(tempfile.mkdtemp(prefix="ff-bench-dedupe-"))
    results: dict = {"docs": args.docs, "cpus": args.cpus, "load_before": os.getloadavg()}
    try:
        corpus = work / "corpus"
        families = make_corpus(corpus, args.docs)
        ids, texts = read_jsonl(corpus)
        size = sum(p.stat().st_size for p in corpus.glob("*.jsonl"))
        print(f"{len(ids):,} documents ({size / 1e6:.0f} MB), {len(families):,} duplicate families")
        results["signatures"] = signature_throughput(texts[: args.sig_docs])
        members, truth = sample_truth(ids, texts, families, args.sample)
        print(f"precision/recall sample: {len(members):,} documents, {len(truth):,} pairs with Jaccard >= {THRESHOLD}")
        rows = {}
        from fusionforge.pipelines.core.ray_env import init_ray

        started = time.perf_counter()
        init_ray(num_cpus=args.cpus)
        results["ray_start_seconds"] = time.perf_counter() - started
        shard_seconds = shard_corpus(corpus, work / "ff", args.cpus)
        cpu_seconds = {}
        with PeakMemory() as memory:
            start = time.perf_counter()
            labels, report = dedupe_only(work / "ff" / "in", work / "ff" / "out", "ray", args.cpus)
            rows["fusionforge dedupe (Ray, 2 CPUs)"] = (
                time.perf_counter() - start,
                args.cpus,
                *score(labels, members, truth),
            )
        cpu_seconds["fusionforge dedupe (Ray, 2 CPUs)"] = memory.cpu_seconds
        results["fusionforge"] = {
            "shard_seconds": shard_seconds,
            "report": report["dedupe"],
            "peak_rss_mb_all_processes": memory.peak / 2**20,
            "peak_rss_mb_driver": memory.driver_peak / 2**20,
        }
        if "fusionforge-local" not in args.skip:
            with PeakMemory() as memory:
                start = time.perf_counter()
                labels, local = dedupe_only(work / "ff" / "in", work / "ff" / "out-local", "local", 1)
                rows["fusionforge dedupe (in-process, 1 CPU)"] = (
                    time.perf_counter() - start,
                    1,
                    *score(labels, members, truth),
                )
            cpu_seconds["fusionforge dedupe (in-process, 1 CPU)"] = memory.cpu_seconds
            results["fusionforge_local"] = {"report": local["dedupe"], "peak_rss_mb": memory.peak / 2**20}
        for tokenizer in ("whitespace", "spacy"):
            if f"datatrove-{tokenizer}" in args.skip:
                continue
            start = time.perf_counter()
            labels = run_datatrove(corpus, work / f"dt-{tokenizer}", tokenizer, args.cpus)
            rows[f"datatrove MinHash, {tokenizer} tokenizer (2 workers)"] = (
                time.perf_counter() - start,
                args.cpus,
                *score(labels, members, truth),
            )
        if "datasketch" not in args.skip:
            start, cpu_start = time.perf_counter(), time.process_time()
            labels = run_datasketch(ids, texts)
            rows["datasketch bulk + MinHashLSH + union-find"] = (
                time.perf_counter() - start,
                1,
                *score(labels, members, truth),
            )
            cpu_seconds["datasketch bulk + MinHashLSH + union-find"] = time.process_time() - cpu_start
        results["end_to_end"] = {
            k: {"seconds": v[0], "cpus": v[1], "precision": v[2], "recall": v[3], "cpu_seconds": cpu_seconds.get(k)}
            for k, v in rows.items()
        }
        results["load_after"] = os.getloadavg()
        print_tables(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_tables(results: dict) -> None:
    sig = results["signatures"]
    ours = sig["fusionforge TextSketcher.sketch (batches of 1000)"]
    print("\nsignatures (one process, 128 permutations, word 5-grams)")
    print("| method | docs/s | fusionforge is |\n| --- | ---: | ---: |")
    for name, rate in sig.items():
        print(f"| {name} | {rate:,.0f} | {ours / rate:.1f}x |")
    rows = results["end_to_end"]
    ours = [k for k in rows if k.startswith("fusionforge")]
    cpu_seconds = {k: rows[k]["seconds"] * rows[k]["cpus"] for k in rows}
    print(
        f"\nend to end, {results['docs']:,} documents (threshold {THRESHOLD}); ratios = CPU-seconds of the row / "
        "CPU-seconds of fusionforge (> 1: fusionforge faster per CPU)"
    )
    print(
        "| pipeline | seconds | CPUs | docs/s per CPU | "
        + " | ".join(f"vs {k}" for k in ours)
        + " | precision | recall |"
    )
    print("| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in ours) + " | ---: | ---: |")
    for name, row in rows.items():
        per_cpu = results["docs"] / row["seconds"] / row["cpus"]
        ratios = " | ".join(f"{cpu_seconds[name] / cpu_seconds[k]:.2f}x" for k in ours)
        print(
            f"| {name} | {row['seconds']:.1f} | {row['cpus']} | {per_cpu:,.0f} | {ratios} | "
            f"{row['precision']:.3f} | {row['recall']:.3f} |"
        )
    measured = {k: row["cpu_seconds"] for k, row in rows.items() if row.get("cpu_seconds")}
    print(
        "\nCPU seconds actually spent (every process: the driver, Ray's daemons and workers); ratio = docs per "
        "CPU-second of fusionforge / that of the row (> 1: fusionforge uses less CPU)"
    )
    print("| pipeline | CPU s | docs per CPU-second | " + " | ".join(f"{k} is" for k in ours if k in measured) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for k in ours if k in measured) + " |")
    for name, cpu in measured.items():
        ratios = " | ".join(f"{cpu / measured[k]:.2f}x" for k in ours if k in measured)
        print(f"| {name} | {cpu:.1f} | {results['docs'] / cpu:,.0f} | {ratios} |")
    ff = results["fusionforge"]
    print(
        f"\nfusionforge phases (s): Ray {ff['report']['seconds']}"
        + (
            f"; in-process {results['fusionforge_local']['report']['seconds']}"
            if "fusionforge_local" in results
            else ""
        )
    )
    print(
        f"fusionforge: shard step {ff['shard_seconds']:.1f} s (not counted above); peak RSS "
        f"{ff['peak_rss_mb_all_processes']:,.0f} MB all processes, {ff['peak_rss_mb_driver']:,.0f} MB driver; "
        f"load average before/after {results['load_before'][0]:.1f}/{results['load_after'][0]:.1f}"
    )


if __name__ == "__main__":
    sys.exit(main())
