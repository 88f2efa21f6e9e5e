"""Web ingest end to end: WARC -> documents through ``fusionforge shard``, and ``fusionforge fetch``, each beside
the loop a user would write around the same library.

1. Documents/s from a gzip WARC (the demo's crawl generator: ``--pages-per-site`` pages for each of
   its three sites, ``--paragraphs`` story paragraphs, one or two 240x180 JPEGs and a logo per
   page): ``run_shard`` in-process (the URL index pass, Resiliparse extraction with image markers,
   image resolution by URL, the bounded decode of every image, tar shards, manifest and ledger)
   against FastWARC's ``ArchiveIterator`` + Resiliparse's ``extract_plain_text(main_content=True)``
   over the same records, which resolves, decodes and writes nothing. Wall and CPU seconds (this
   process, best of ``--repeat``); the ratio is fusionforge's overhead around the extractor.
2. URLs/s of ``fusionforge fetch`` against a local image server beside a plain ``httpx`` async loop
   with the same concurrency: ``measure`` of ``bench/fetch.py`` (see there), called here.

Run: ``.venv/bin/python bench/web_ingest.py`` (``--pages-per-site 200 --urls 2000``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from fetch import measure  # bench/fetch.py: python puts the script's folder first on sys.path


def extractor_loop(warc: Path) -> int:
    """What a user would write: every HTML 200 response's main content, with FastWARC and Resiliparse alone."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    documents = 0
    with open(warc, "rb") as handle:
        for record in ArchiveIterator(handle, record_types=WarcRecordType.response, parse_http=True):
            if record.http_headers.status_code != 200 or "html" not in (record.http_content_type or ""):
                continue
            body = record.reader.read()
            text = extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)
            documents += bool(text.strip())
    return documents


def fusionforge_shard(warc: Path, out: Path) -> int:
    from fusionforge.pipelines.core.settings import RunSettings
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    report = run_shard(ShardConfig(inputs=(f"crawl={warc}",), output=str(out), run=RunSettings(executor="local")))
    return report["kept"]


def timed(function, *args) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def documents_per_second(pages_per_site: int, paragraphs: int, repeat: int) -> dict[str, Any]:
    from fusionforge.pipelines.demo_corpus import make_crawl

    work = Path(tempfile.mkdtemp(prefix="bench-web-ingest-"))
    try:
        warc = make_crawl(work / "crawl.warc.gz", random.Random(0), pages_per_site, paragraphs)
        ours, ref = [], []
        for attempt in range(repeat):
            ours.append(timed(fusionforge_shard, warc, work / f"out{attempt}"))
            ref.append(timed(extractor_loop, warc))
            shutil.rmtree(work / f"out{attempt}")
        size = warc.stat().st_size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kept, wall, cpu = min(ours, key=lambda r: r[1])
    found, ref_wall, ref_cpu = min(ref, key=lambda r: r[1])
    return {
        "warc_mb": round(size / 1e6, 1),
        "documents": kept,
        "extractor_documents": found,
        "shard_docs_per_s": round(kept / wall, 1),
        "extractor_docs_per_s": round(found / ref_wall, 1),
        "wall_ratio": round((kept / wall) / (found / ref_wall), 2),
        "shard_cpu_s": round(cpu, 2),
        "extractor_cpu_s": round(ref_cpu, 2),
        "cpu_ratio": round(ref_cpu / cpu, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages-per-site", type=int, default=200, help="pages of each of the 3 generated sites")
    parser.add_argument("--paragraphs", type=int, default=2, help="story paragraphs per page (about 60 words each)")
    parser.add_argument("--urls", type=int, default=2000, help="URLs for the fetch comparison (0: leave it out)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the image server waits per answer")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved runs of each; the best counts")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    shard = documents_per_second(args.pages_per_site, args.paragraphs, args.repeat)
    print(json.dumps(shard), flush=True)
    fetch = measure(args.urls, args.concurrency, args.latency, repeat=args.repeat) if args.urls else None
    print(json.dumps(fetch), flush=True)
    print(f"\n{os.cpu_count()} CPUs, load average {load:.1f} -> {os.getloadavg()[0]:.1f}\n")
    print("| measure | fusionforge | reference | fusionforge / reference |")
    print("|---|---:|---:|---:|")
    print(
        f"| documents/s from a {shard['warc_mb']} MB gzip WARC ({shard['documents']} pages) | "
        f"{shard['shard_docs_per_s']} | {shard['extractor_docs_per_s']} (FastWARC + Resiliparse loop) | "
        f"{shard['wall_ratio']:.2f} |"
    )
    print(
        f"| CPU seconds for those pages | {shard['shard_cpu_s']} | {shard['extractor_cpu_s']} | "
        f"{shard['cpu_ratio']:.2f} (reference / fusionforge) |"
    )
    if fetch:
        print(
            f"| URLs/s, concurrency {fetch['concurrency']}, latency {fetch['latency_s']:g} s | "
            f"{fetch['fetch_urls_per_s']} | {fetch['httpx_urls_per_s']} (httpx loop) | {fetch['ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
