"""``fusionforge fetch`` URLs/s against a local image server, beside a plain httpx async loop.

The server (``python -m fusionforge.pipelines.fetch.media_server``, in its own process so it does not
share the client's GIL) serves N JPEGs at ``/img/{i}.jpg``, each answer after ``--latency`` seconds.
Both clients fetch the same N URLs with the same concurrency, in the same run:

- ``fusionforge fetch`` (``run_fetch``, in-process): per-host scheduling (``--per-host`` = concurrency,
  one host here), opt-out, length and type checks, the bounded full decode of every image, sha256,
  atomic file writes, the per-URL journal, partition parts, the merged ``pairs.jsonl`` and ledger;
- the reference a user would otherwise write: one ``httpx.AsyncClient``, ``concurrency`` workers,
  ``GET``, status 200, the body written to a file. No checks, no ledger, no resume;
- the same loop with one single-connection client per worker (what fetch does inside, see
  ``pipelines/fetch/download.py``), so the ratio shows what the pool layout alone is worth.

URLs/s of fetch counts its fetch phase (first request to last decision); "end to end" adds hashing
the listing, the merge and the report. With ``--latency 0`` both are bound by the client's CPU; with
a latency the ideal is concurrency / latency.

    python bench/fetch.py --urls 3000 --concurrency 16 64 --latency 0 0.05

``measure(...)`` returns one comparison as a dict, for ``bench/web_ingest.py`` to call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def start_server(urls: int, size: int, latency: float) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "fusionforge.pipelines.fetch.media_server", "--images", str(urls)]
    command += ["--size", str(size), "--latency", str(latency)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    base = proc.stdout.readline().strip()
    if not base.startswith("http"):
        proc.kill()
        raise SystemExit("the media server did not start")
    return proc, base


def write_listing(folder: Path, base: str, urls: int) -> Path:
    listing = folder / "urls.jsonl"
    listing.write_text(
        "".join(json.dumps({"url": f"{base}/img/{i}.jpg", "caption": f"image {i}"}) + "\n" for i in range(urls))
    )
    return listing


def fusionforge_fetch(listing: Path, out: Path, concurrency: int) -> tuple[int, float, float]:
    """(images kept, seconds of the fetch phase, seconds end to end)."""
    from fusionforge.pipelines.fetch.config import FetchConfig
    from fusionforge.pipelines.fetch.run import run_fetch

    cfg = FetchConfig(listings=(str(listing),), output=str(out), concurrency=concurrency, per_host=concurrency)
    started = time.perf_counter()
    report = run_fetch(cfg)
    total = time.perf_counter() - started
    assert report["kept"] == report["inputs"], report["reasons"]
    return report["kept"], report["fetch_seconds"], total


def httpx_reference(listing: Path, out: Path, concurrency: int, shared: bool = True) -> tuple[int, float]:
    """A plain httpx async loop: ``concurrency`` workers sharing one client (``shared``) or one client each,
    each body written to a file."""
    import httpx

    urls = [json.loads(line)["url"] for line in listing.read_text().splitlines()]
    out.mkdir(parents=True)

    async def go() -> int:
        queue = iter(enumerate(urls))
        saved = 0
        size = concurrency if shared else 1
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        clients = [httpx.AsyncClient(limits=limits, timeout=20.0) for _ in range(1 if shared else concurrency)]

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal saved
            for i, url in queue:
                response = await client.get(url)
                if response.status_code == 200:
                    (out / f"{i}.jpg").write_bytes(response.content)
                    saved += 1

        await asyncio.gather(*(worker(clients[w % len(clients)]) for w in range(concurrency)))
        for client in clients:
            await client.aclose()
        return saved

    started = time.perf_counter()
    saved = asyncio.run(go())
    return saved, time.perf_counter() - started


def measure(
    urls: int = 3000, concurrency: int = 64, latency: float = 0.0, size: int = 256, repeat: int = 2
) -> dict[str, Any]:
    """One comparison (best of ``repeat`` interleaved runs each): URLs/s of fetch, of the httpx loop, and the ratio."""
    server, base = start_server(urls, size, latency)
    work = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    try:
        listing = write_listing(work, base, urls)
        ours, ours_total, ref, ref_each = [], [], [], []
        for attempt in range(repeat):
            kept, fetch_s, total_s = fusionforge_fetch(listing, work / f"ff{attempt}", concurrency)
            ours.append(kept / fetch_s)
            ours_total.append(kept / total_s)
            saved, ref_s = httpx_reference(listing, work / f"ref{attempt}", concurrency)
            ref.append(saved / ref_s)
            saved, ref_s = httpx_reference(listing, work / f"each{attempt}", concurrency, shared=False)
            ref_each.append(saved / ref_s)
            for name in ("ff", "ref", "each"):
                shutil.rmtree(work / f"{name}{attempt}")
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    best, best_ref = max(ours), max(ref)
    return {
        "urls": urls,
        "concurrency": concurrency,
        "latency_s": latency,
        "image_px": size,
        "fetch_urls_per_s": round(best, 1),
        "fetch_end_to_end_urls_per_s": round(max(ours_total), 1),
        "httpx_urls_per_s": round(best_ref, 1),
        "ratio": round(best / best_ref, 2),
        "httpx_client_per_worker_urls_per_s": round(max(ref_each), 1),
        "ratio_client_per_worker": round(best / max(ref_each), 2),
        "ideal_urls_per_s": round(concurrency / latency, 1) if latency else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05], help="server seconds per answer")
    parser.add_argument("--size", type=int, default=256, help="side of the served JPEGs, in pixels")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved runs of each; the best counts")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = []
    for latency in args.latency:
        for concurrency in args.concurrency:
            row = measure(args.urls, concurrency, latency, args.size, args.repeat)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"\n{args.urls} URLs of {args.size} px JPEGs, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| latency s | concurrency | ideal URLs/s | fetch URLs/s | fetch end to end | httpx loop URLs/s "
        "| fetch / httpx | httpx, client per worker | fetch / that |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ideal = f"{r['ideal_urls_per_s']:.0f}" if r["ideal_urls_per_s"] else "-"
        print(
            f"| {r['latency_s']:g} | {r['concurrency']} | {ideal} | {r['fetch_urls_per_s']:.1f} | "
            f"{r['fetch_end_to_end_urls_per_s']:.1f} | {r['httpx_urls_per_s']:.1f} | {r['ratio']:.2f} | "
            f"{r['httpx_client_per_worker_urls_per_s']:.1f} | {r['ratio_client_per_worker']:.2f} |"
        )


if __name__ == "__main__":
    main()
