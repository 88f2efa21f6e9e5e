"""A URL index over the WARC files read together, so a page in any of them finds its images in all of them.

A first pass (``build_index``, in the driver before any partition is read) reads every record's
headers (FastWARC skips payloads without copying them) and stores, per captured URL, where its
record is: the file, the record's offset, for a plain WARC whose payload has no transfer or content
encoding also the payload's own byte range (checked against its first bytes), the image format its
first bytes show, a redirect's or revisit's target, or why it cannot be an image (``http_404``,
``truncated_image``, ``unsupported_image``, ``not_an_image``). A URL captured more than once keeps
its first usable capture in input order (a capture beats a redirect beats a failure).

URLs are compared in a normal form (``key_of``): scheme and host in lower case, the scheme's default
port and the fragment dropped, an empty path made ``/`` (RFC 3986, section 6.2.3), so a page's
``HTTP://Example.org:80/a.png#top`` finds the capture of ``http://example.org/a.png``. A revisit
record (a deduplicating crawler's "same bytes as before") leads to the capture it refers to by
``WARC-Refers-To-Target-URI``, or, when it names none or that URL was not captured, to a usable
capture with the same ``WARC-Payload-Digest`` in the files read together.

Memory stays bounded whatever the crawl's size: rows go to an SQLite file in batches of
``BATCH`` (indexed by URL, SQLite's own page cache of a few MB), never to a dict, and readers
look up one URL at a time. The file lives in the output's scratch folder, which the workers share
as they share the output folder. Lookups follow redirects and revisits (at most ``MAX_HOPS``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from fusionforge.pipelines.readers.base import sniff_image
from fusionforge.pipelines.readers.warc_records import WarcEntry, is_gzip, iter_entries, payload_offset, read_entry

BATCH = 5000
MAX_HOPS = 5
INDEX_FILE = "urls.sqlite"
DEFAULT_PORTS = {"http": 80, "https": 443}
DIGEST = "digest:"  # a revisit's target when only its payload digest names the original
IMAGE_TYPES = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}
_SCHEMA = """
CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL);
CREATE TABLE urls (
    url TEXT PRIMARY KEY, rank INTEGER NOT NULL, file INTEGER, offset INTEGER, payload_offset INTEGER,
    size INTEGER, format TEXT, redirect TEXT, problem TEXT, digest TEXT
) WITHOUT ROWID;
"""
_DIGEST_INDEX = "CREATE INDEX urls_digest ON urls (digest) WHERE digest IS NOT NULL"
_UPSERT = """
INSERT INTO urls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(url) DO UPDATE SET rank = excluded.rank, file = excluded.file, offset = excluded.offset,
    payload_offset = excluded.payload_offset, size = excluded.size, format = excluded.format,
    redirect = excluded.redirect, problem = excluded.problem, digest = excluded.digest
WHERE excluded.rank < urls.rank
"""
USABLE, REDIRECT, FAILED = 0, 1, 2  # ranks: a usable capture beats a redirect beats a failure


@dataclass(frozen=True)
class Capture:
    """A captured image: its WARC file and record, and the payload's byte range where it can be referenced."""

    path: str
    offset: int
    payload_offset: int | None  # set for a plain, unencoded payload: the image is this range of the file
    size: int | None
    format: str | None


def key_of(url: str) -> str:
    """The index key of a URL: its normal form (see the module docstring); the fragment never reaches the server."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port that is no number: compare the URL as written, less its fragment
        return url.strip().partition("#")[0]
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    user = parts.netloc.rpartition("@")[0]
    netloc = (f"{user}@" if user else "") + host + (f":{port}" if port and port != DEFAULT_PORTS.get(scheme) else "")
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def build_index(paths: Iterable[str], target: str | os.PathLike) -> None:
    """Index every image-like capture of the WARC files into ``target`` (written whole, then renamed)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        with sqlite3.connect(tmp) as db:
            db.executescript(_SCHEMA)
            db.execute(_DIGEST_INDEX)
            for number, path in enumerate(paths):
                db.execute("INSERT INTO files VALUES (?, ?)", (number, path))
                batch: list[tuple[Any, ...]] = []
                for row in _rows(path, number):
                    batch.append(row)
                    if len(batch) >= BATCH:
                        db.executemany(_UPSERT, batch)
                        batch.clear()
                db.executemany(_UPSERT, batch)
                db.commit()
        db.close()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _rows(path: str, number: int) -> Iterator[tuple[Any, ...]]:
    """One index row per capture of ``path`` that a page could show as an image."""
    plain = not is_gzip(path)
    for entry in iter_entries(path, want=lambda entry: None):
        if not entry.url or entry.record_type not in ("response", "resource", "revisit"):
            continue
        row = _row(entry, number)
        if row is None:
            continue
        if plain and row[1] == USABLE and not entry.encoded:
            row = (*row[:4], payload_offset(path, entry), *row[5:])
        yield row


def _row(entry: WarcEntry, number: int) -> tuple[Any, ...] | None:
    """(url, rank, file, offset, payload_offset, size, format, redirect, problem, digest) for one capture."""
    url = key_of(entry.url or "")
    base = (url, FAILED, number, entry.offset, None, entry.payload_length)
    if entry.problem:
        return (*base, None, None, "truncated_image: " + entry.problem.partition(": ")[2], None)
    if entry.record_type == "revisit":
        target = key_of(entry.location) if entry.location else None
        if target is None or target == url:  # no other URL named: the bytes are found by their digest
            target = DIGEST + entry.payload_digest if entry.payload_digest else None
        return (url, REDIRECT, number, entry.offset, None, None, None, target, None, None) if target else None
    status = entry.status or 200
    if 300 <= status < 400 and entry.location:
        location = key_of(urljoin(url, entry.location))
        return (url, REDIRECT, number, entry.offset, None, None, None, location, None, None)
    if not 200 <= status < 300:
        return (*base, None, None, f"http_{status}", None)
    fmt = IMAGE_TYPES.get(entry.content_type or "") if entry.encoded else sniff_image(entry.head)
    if fmt is not None:
        return (url, USABLE, number, entry.offset, None, entry.payload_length, fmt, None, None, entry.payload_digest)
    kind = entry.content_type or "no Content-Type"
    code = "unsupported_image" if kind.startswith("image/") else "not_an_image"
    return (*base, None, None, f"{code}: {kind}", None)


class UrlIndex:
    """Look-ups in a built index, and the bytes of captures that cannot be referenced by range."""

    def __init__(self, path: str | os.PathLike) -> None:
        uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro&immutable=1"  # read-only: no locks on a shared disk
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._files = dict(self._db.execute("SELECT id, path FROM files"))
        self._handles: dict[str, Any] = {}

    def lookup(self, url: str) -> Capture | str:
        """The capture an image URL leads to (following redirects), or why there is none (a reason text)."""
        key = key_of(url)
        for _ in range(MAX_HOPS + 1):
            row = self._row(key)
            if row is None:
                return "not_in_warc: no capture of this URL in the WARC files read together"
            file, offset, start, size, fmt, redirect, problem = row
            if redirect is None:
                return problem or Capture(self._files[file], offset, start, size, fmt)
            key = redirect
        return f"redirect_loop: more than {MAX_HOPS} redirects"

    def _row(self, key: str) -> tuple[Any, ...] | None:
        """The index row of a URL key, or of the first usable capture with a revisit's digest (``digest:...``)."""
        columns = "file, offset, payload_offset, size, format, redirect, problem"
        if not key.startswith(DIGEST):
            return self._db.execute(f"SELECT {columns} FROM urls WHERE url = ?", (key,)).fetchone()
        query = f"SELECT {columns} FROM urls WHERE digest = ? AND rank = ? ORDER BY file, offset LIMIT 1"
        found = self._db.execute(query, (key[len(DIGEST) :], USABLE)).fetchone()
        return found or (None, None, None, None, None, None, "not_in_warc: the revisit's original was not captured")

    def copy(self, capture: Capture, max_bytes: int) -> bytes | str:
        """The decoded payload of a capture (gzip WARCs, encoded payloads), or why it cannot be had."""
        handle = self._handles.get(capture.path)
        if handle is None:
            if len(self._handles) >= 8:
                self._handles.pop(next(iter(self._handles))).close()
            handle = self._handles[capture.path] = open(capture.path, "rb")  # noqa: SIM115 - closed in close()
        try:
            entry = read_entry(handle, capture.offset, want=lambda entry: max_bytes)
        except OSError as exc:
            return f"unreadable_image: {exc}"
        if entry is None:
            return "unreadable_image: no record at its offset"
        if entry.problem:
            return "truncated_image: " + entry.problem.partition(": ")[2]
        if entry.payload is None:
            return (
                f"record_too_large: the image has {entry.payload_length or 0:,} bytes, over what the document may copy"
            )
        return entry.payload

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        self._db.close()
