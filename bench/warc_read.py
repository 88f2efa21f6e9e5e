"""Reading WARC records: FastWARC (what fusionforge uses) against warcio, on the same generated files.

A WARC of ``--pages`` HTML responses and as many 30 kB image responses is written with warcio, plain
and gzip (one member per record, as crawlers write them). Each library then reads every record with
its HTTP headers, once reading every payload and once only the headers (what the URL index pass
needs), best of ``--repeat`` runs. Run: ``.venv/bin/python bench/warc_read.py``.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import time
from collections.abc import Callable
from functools import partial


def make_warc(path: str, pages: int, compress: bool) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rnd = random.Random(0)
    html = ("<html><body>" + "<p>word " * 2000 + "</p></body></html>").encode()
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=compress)
        for i in range(pages):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            record = writer.create_warc_record(
                f"http://example.org/{i}.html", "response", payload=io.BytesIO(html), http_headers=http
            )
            writer.write_record(record)
            http = StatusAndHeaders("200 OK", [("Content-Type", "image/jpeg")], protocol="HTTP/1.1")
            image = io.BytesIO(rnd.randbytes(30_000))
            writer.write_record(
                writer.create_warc_record(f"http://example.org/{i}.jpg", "response", payload=image, http_headers=http)
            )


def fastwarc(path: str, payloads: bool) -> int:
    from fastwarc.warc import ArchiveIterator

    total = 0
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle, parse_http=True):
            if payloads:
                total += len(record.reader.read())
            else:
                total += record.http_content_type is not None
    return total


def warcio(path: str, payloads: bool) -> int:
    from warcio.archiveiterator import ArchiveIterator

    total = 0
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle):
            if payloads:
                total += len(record.content_stream().read())
            else:
                total += record.http_headers.get_header("Content-Type") is not None
    return total


def best(run: Callable[[], int], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for compress in (False, True):
            path = os.path.join(folder, "bench.warc" + (".gz" if compress else ""))
            make_warc(path, args.pages, compress)
            size = os.path.getsize(path) / 1e6
            for payloads in (True, False):
                assert fastwarc(path, payloads) == warcio(path, payloads)
                fast = best(partial(fastwarc, path, payloads), args.repeat)
                slow = best(partial(warcio, path, payloads), args.repeat)
                what = "payloads" if payloads else "headers "
                print(
                    f"{'gzip ' if compress else 'plain'} {size:6.1f} MB {2 * args.pages} records, {what}: "
                    f"fastwarc {fast:.2f} s ({size / fast:6.0f} MB/s)  warcio {slow:.2f} s ({size / slow:5.0f} MB/s)  "
                    f"x{slow / fast:.1f}"
                )


if __name__ == "__main__":
    main()
