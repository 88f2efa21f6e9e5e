"""Audit throughput: ``fusionforge audit`` versus a plain pandas groupby over the same manifest Parquet.

The reference is what a user would write by hand for the mixture table: read the columns into pandas
and group by source x modality x language, summing records, characters and tokens. The audit computes
that and much more in the same pass (media bytes, histograms of lengths, image sizes, video facts and
scores, the token estimate rule), streaming in bounded batches; pandas holds the columns in memory.
Each contender runs in its own process, ``--repeat`` times (best time kept), after one warm-up read
of the file so that no contender pays for a cold page cache; peak memory is that process's
high-water RSS (VmHWM). With Ray, the folding runs in worker processes, so their peaks count too:
the Ray row adds up the driver's and every task worker's VmHWM (found with psutil among the
driver's child processes), and reports Ray's daemons (GCS, raylet, dashboard, agents) apart.

    python bench/audit.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.pipelines.core.settings import RunSettings

SOURCES = [
    ("web", "text", 0.55),
    ("books", "text", 0.10),
    ("photos", "image", 0.20),
    ("docs", "interleaved", 0.10),
    ("clips", "video", 0.05),
]
LANGUAGES = (["en"] * 6) + ["de", "fr", "es", "zh"]
LANG_COLUMN = "text_lang_v1__lang"
SCORE_COLUMN = "text_gopher_quality_v1__mean_word_length"
GROUP_ROWS = 65_536


def make_manifest(path: Path, records: int, seed: int = 0) -> None:
    """A manifest shaped like a filter output: record schema, a language column and a score column."""
    from fusionforge.pipelines.core import schema as S

    rng = np.random.default_rng(seed)
    vocabulary = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(2, 10))) for _ in range(5000)]
    pool = " ".join(rng.choice(vocabulary, 2_000_000))
    schema = pa.schema(
        list(S.RECORD_SCHEMA)
        + [(LANG_COLUMN, pa.string()), (SCORE_COLUMN, pa.float64()), ("shard", pa.string()), ("key", pa.string())]
    )
    kinds = np.array([k for _, k, _ in SOURCES])
    names = np.array([n for n, _, _ in SOURCES])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, records, GROUP_ROWS):
            n = min(GROUP_ROWS, records - start)
            pick = rng.choice(len(SOURCES), n, p=[p for _, _, p in SOURCES])
            modality = kinds[pick]
            lengths = np.where(modality == "text", rng.lognormal(6.9, 1.0, n), rng.lognormal(4, 0.8, n))
            lengths = np.minimum(lengths.astype(np.int64) + 1, 200_000)
            offsets = rng.integers(0, len(pool) - 200_001, n)
            texts = [pool[o : o + k] for o, k in zip(offsets.tolist(), lengths.tolist())]
            media = [_media(rng, m) for m in modality.tolist()]
            table = pa.table(
                {
                    S.ID: [f"{names[p]}/{start + i}" for i, p in enumerate(pick.tolist())],
                    S.CONTENT_HASH: [None] * n,
                    S.SOURCE: names[pick],
                    S.MODALITY: modality,
                    S.TEXT: pa.array(texts, pa.large_string()),
                    S.SEGMENTS: pa.nulls(n, schema.field(S.SEGMENTS).type),
                    S.MEDIA: pa.array(media, schema.field(S.MEDIA).type),
                    S.META: pa.array(
                        [json.dumps({"url": f"https://example.org/{start + i}"}) for i in range(n)], pa.large_string()
                    ),
                    S.PARENT_ID: pa.nulls(n, pa.string()),
                    S.INPUT_FILE: ["input.jsonl"] * n,
                    S.INPUT_POSITION: np.arange(start, start + n),
                    S.TEXT_TOKENS: lengths // 4,
                    S.VISION_TOKENS: pa.nulls(n, pa.int64()),
                    S.DROP_REASON: pa.nulls(n, pa.string()),
                    S.ERROR: pa.nulls(n, pa.string()),
                    LANG_COLUMN: rng.choice(LANGUAGES, n),
                    SCORE_COLUMN: rng.normal(5, 1, n),
                    "shard": [f"shards/part-{start // GROUP_ROWS:06d}.tar"] * n,
                    "key": [str(start + i) for i in range(n)],
                },
                schema=schema,
            )
            writer.write_table(table)


def _media(rng: np.random.Generator, modality: str) -> list[dict]:
    def item(kind: str) -> dict:
        width, height = int(rng.integers(64, 4096)), int(rng.integers(64, 4096))
        frames = int(rng.integers(4, 600)) if kind == "video" else None
        return {
            "kind": kind,
            "uri": "shards/part.tar",
            "offset": 512,
            "size": int(rng.integers(5_000, 5_000_000)),
            "format": "mp4" if kind == "video" else "jpeg",
            "width": width,
            "height": height,
            "duration_s": frames / 30 if frames else None,
            "fps": 30.0 if frames else None,
            "n_frames": frames,
        }

    if modality == "image":
        return [item("image")]
    if modality == "video":
        return [item("video")]
    if modality == "interleaved":
        return [item("image") for _ in range(int(rng.integers(1, 6)))]
    return []


def run_audit_child(path: str, executor: str, sample: float | None) -> dict:
    from fusionforge.mixers.audit import AuditOptions, run_audit

    if executor == "ray":  # start Ray before the clock: its start-up is not audit time
        from fusionforge.pipelines.core.ray_env import init_ray

        init_ray(num_cpus=2)
    started = time.perf_counter()
    report = run_audit([path], AuditOptions(sample=sample, run=RunSettings(executor=executor)))
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "records": report["totals"]["records"], "groups": len(report["mixture"])}
    return {**result, **ray_peaks()} if executor == "ray" else result


def ray_peaks() -> dict:
    """Peak RSS of the Ray processes this driver started: task workers (summed) and daemons (summed).

    Workers are the raylet's ``ray::...`` processes other than its agents; each peak is that process's
    VmHWM, so the sum is an upper bound of what they held at once (and counts shared library pages
    once per process).
    """
    import psutil

    workers, daemons, count = 0.0, 0.0, 0
    for child in psutil.Process().children(recursive=True):
        try:
            title = (child.cmdline() or [child.name()])[0]
            peak = peak_rss_mb(child.pid)
        except (psutil.Error, OSError, RuntimeError):  # exited meanwhile
            continue
        if title.startswith("ray::") and not title.endswith("Agent"):
            workers, count = workers + peak, count + 1
        else:
            daemons += peak
    return {"workers_peak_mb": workers, "workers": count, "daemons_peak_mb": daemons}


def run_pandas_child(path: str) -> dict:
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_parquet(path, columns=["source", "modality", LANG_COLUMN, "text", "text_tokens", "vision_tokens"])
    frame["text_chars"] = frame["text"].str.len()
    table = frame.groupby(["source", "modality", LANG_COLUMN]).agg(
        records=("source", "size"),
        text_chars=("text_chars", "sum"),
        text_tokens=("text_tokens", "sum"),
        vision_tokens=("vision_tokens", "sum"),
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "records": int(table["records"].sum()), "groups": len(table)}


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's high-water resident memory (Linux VmHWM; new with each exec, unlike ru_maxrss)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def measure(args: list[str]) -> dict:
    """Run one contender in a fresh process; its result and its peak RSS."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workdir", default="/tmp/fusionforge-bench-audit")
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender (the best is kept)")
    parser.add_argument("--child", choices=["audit", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--executor", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if args.child:
        result = (
            run_audit_child(args.path, args.executor, args.sample)
            if args.child == "audit"
            else run_pandas_child(args.path)
        )
        print(json.dumps({**result, "peak_mb": peak_rss_mb()}))
        return
    work = Path(args.workdir) / str(args.records)
    path = work / "manifest.parquet"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        make_manifest(work / ".manifest.tmp", args.records)
        (work / ".manifest.tmp").rename(path)
        print(f"generated {args.records:,} records in {time.perf_counter() - started:.0f} s")
    size = path.stat().st_size
    print(
        f"manifest: {path} ({args.records:,} records, {size / 1e9:.2f} GB, "
        f"{pq.ParquetFile(path).metadata.num_row_groups} row groups); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    contenders = [
        ("pandas read_parquet + groupby (reference)", ["--child", "pandas", "--path", str(path)]),
        ("fusionforge audit, in-process (exact)", ["--child", "audit", "--path", str(path)]),
        (
            "fusionforge audit, Ray tasks, 2 CPUs (exact)",
            ["--child", "audit", "--executor", "ray", "--path", str(path)],
        ),
        ("fusionforge audit --sample 0.1, in-process", ["--child", "audit", "--sample", "0.1", "--path", str(path)]),
    ]
    with open(path, "rb") as handle:  # warm the page cache once, for every contender alike
        while handle.read(64 * 1024**2):
            pass
    results = []
    for label, child in contenders:
        runs = [measure(child) for _ in range(args.repeat)]
        result = min(runs, key=lambda r: r["seconds"])
        for key in ("peak_mb", "workers_peak_mb", "daemons_peak_mb"):
            if key in result:
                result[key] = max(r[key] for r in runs)
        result["label"] = label
        result["records_per_s"] = args.records / result["seconds"]
        results.append(result)
    reference = results[0]
    print("\n| contender | seconds | records/s | ratio vs pandas | peak RSS (MB) |\n|---|---:|---:|---:|---:|")
    for r in results:
        memory = f"{r['peak_mb']:,.0f}"
        if "workers_peak_mb" in r:
            memory = (
                f"{r['peak_mb'] + r['workers_peak_mb']:,.0f} (driver {r['peak_mb']:,.0f} + "
                f"{r['workers']} workers {r['workers_peak_mb']:,.0f})"
            )
        print(
            f"| {r['label']} | {r['seconds']:.1f} | {r['records_per_s']:,.0f} | "
            f"{r['records_per_s'] / reference['records_per_s']:.2f}x | {memory} |"
        )
    for r in results:
        if "daemons_peak_mb" in r:
            print(
                f"\n({r['label']}: peaks of the driver and of each task worker, summed; Ray's daemons (GCS, raylet, "
                f"dashboard, agents) held {r['daemons_peak_mb']:,.0f} MB more.)"
            )
    assert all(r["records"] == args.records for r in results[:3]), [r["records"] for r in results]


if __name__ == "__main__":
    main()
