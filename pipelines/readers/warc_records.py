"""The records of one WARC file (plain or gzip) with their HTTP facts, and the damage they carry.

FastWARC reads the file; this module adds what a ledger needs and the library does not say. A
record cut short by the end of the file comes out with ``problem`` set: the payload it gave is
shorter than its ``Content-Length`` promises (FastWARC returns what is there without a word), or
its HTTP headers end early. A gzip WARC cut inside a later member loses that record silently in
FastWARC (and in warcio), so after the last record the file's tail is checked: gzip members after
the last record's member, or bytes after a plain file's last record, mean a record could not be
read, and one more entry says so. Payloads are read only for the records the caller asks for,
bounded by ``max_bytes``; transfer and content encodings are undone by FastWARC's own readers.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

HEADER_LIMIT = 64 * 1024  # the longest WARC header block looked for when locating a payload
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class WarcEntry:
    """One record: where it is, what it is, and (when asked for) its decoded payload."""

    position: int  # 0-based record number in the file
    offset: int  # where the record (its gzip member, for .warc.gz) starts in the file
    record_type: str  # response, request, warcinfo, resource, revisit, metadata, ...
    url: str | None = None
    record_id: str | None = None
    date: str | None = None
    status: int | None = None  # HTTP status; None for records without HTTP
    content_type: str | None = None  # lower case, without parameters
    charset: str | None = None  # declared in the HTTP Content-Type, as a Python codec name
    location: str | None = None  # a redirect's target (HTTP Location), or a revisit's WARC-Refers-To-Target-URI
    payload_digest: str | None = None  # WARC-Payload-Digest ("sha1:..."): how a revisit names its original
    transfer_encoding: str = ""  # HTTP Transfer-Encoding, lower case ("" for none)
    content_encoding: str = ""  # HTTP Content-Encoding, lower case ("" for none)
    block_length: int | None = None  # WARC Content-Length
    payload_length: int | None = None  # bytes of the (still encoded) payload as stored
    head: bytes = b""  # the first bytes of the payload as stored, to tell image formats apart
    payload: bytes | None = None  # the decoded payload, for entries the caller wanted
    problem: str | None = None  # ledger reason text when the record is damaged or cannot be read

    @property
    def encoded(self) -> bool:
        """Whether the stored bytes are not the payload itself (chunked, gzip, ...)."""
        return self.transfer_encoding not in ("", "identity") or self.content_encoding not in ("", "identity")


Want = Callable[[WarcEntry], int | None]  # how many payload bytes to read for an entry (None: none)


def is_gzip(path: str) -> bool:
    """Whether the file starts as a gzip stream (the name may not say)."""
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def iter_entries(path: str, want: Want) -> Iterator[WarcEntry]:
    """Every record of the file in order, then one entry with ``problem`` set if its tail is damaged."""
    from fastwarc.warc import ArchiveIterator

    position, last_offset = 0, None
    try:
        with open(path, "rb") as handle:
            for record in ArchiveIterator(handle, parse_http=False):
                entry = entry_of(record, position, want)
                last_offset = entry.offset
                position += 1
                yield entry
    except OSError as exc:  # FastWARC raises OSError for what it cannot parse or decompress
        yield WarcEntry(position, -1, "unknown", problem=f"unreadable_file: {exc} (after {position} records)")
        return
    problem = tail_problem(path, last_offset)
    if problem:
        yield WarcEntry(position, -1, "unknown", problem=problem)


def read_entry(handle: io.BufferedReader, offset: int, want: Want) -> WarcEntry | None:
    """The record that starts at ``offset`` of an open WARC file (plain or gzip), or None."""
    from fastwarc.warc import ArchiveIterator

    handle.seek(offset)
    for record in ArchiveIterator(handle, parse_http=False):
        entry = entry_of(record, 0, want)
        entry.offset = offset
        return entry
    return None


def entry_of(record, position: int, want: Want) -> WarcEntry:
    """The facts of one FastWARC record; its payload too when ``want`` asks for it."""
    headers = record.headers
    entry = WarcEntry(
        position=position,
        offset=record.stream_pos,
        record_type=str(record.record_type),
        url=headers.get("WARC-Target-URI"),
        record_id=(headers.get("WARC-Record-ID") or "").strip("<> ") or None,
        date=headers.get("WARC-Date"),
    )
    declared = headers.get("Content-Length")
    if declared is None or not declared.strip().isdigit():
        entry.problem = "truncated_record: the record's WARC headers end early (no Content-Length)"
        return entry
    entry.block_length = int(declared)
    if record.is_http:
        if not _http_facts(record, entry):
            return entry
    else:
        entry.content_type = _media_type(headers.get("Content-Type"))
    entry.payload_length = record.content_length
    entry.payload_digest = (headers.get("WARC-Payload-Digest") or "").strip() or None
    if entry.record_type == "revisit":
        entry.location = headers.get("WARC-Refers-To-Target-URI")
    if headers.get("WARC-Truncated"):
        entry.problem = f"truncated_record: the crawler cut it (WARC-Truncated: {headers.get('WARC-Truncated')})"
    _read_payload(record, entry, want(entry))
    return entry


def _http_facts(record, entry: WarcEntry) -> bool:
    """Parse the HTTP headers into ``entry``; False (with ``problem`` set) when they cannot be read."""
    try:
        record.parse_http(auto_decode="none")
    except OSError as exc:
        entry.problem = f"truncated_record: its HTTP headers cannot be read ({exc})"
        return False
    http = record.http_headers
    if http is None or (entry.record_type == "response" and http.status_code is None):
        entry.problem = "truncated_record: its HTTP headers end early"
        return False
    entry.status = http.status_code
    entry.content_type = _media_type(http.get("Content-Type"))
    entry.charset = record.http_charset
    entry.location = http.get("Location")
    entry.transfer_encoding = (http.get("Transfer-Encoding") or "").strip().lower()
    entry.content_encoding = (http.get("Content-Encoding") or "").strip().lower()
    return True


def _read_payload(record, entry: WarcEntry, limit: int | None) -> None:
    """Read the payload (up to ``limit`` bytes) or just its first bytes; flag a record the file cut short."""
    expected = entry.payload_length or 0
    reader = record.reader
    if limit is None or expected > limit:
        entry.head = reader.read(16)
        got = len(entry.head) + _consume(reader)
    else:
        raw = reader.read(expected)
        entry.head, got = raw[:16], len(raw)
        if got == expected and entry.problem is None:
            entry.payload = _decoded(raw, entry)
    if got < expected:
        entry.problem = f"truncated_record: the file ends inside it ({got:,} of {expected:,} payload bytes)"
        entry.payload = None


def _consume(reader) -> int:
    """Skip the rest of a payload (inside FastWARC, no copy), returning how many bytes it had."""
    return reader.consume()


def _decoded(raw: bytes, entry: WarcEntry) -> bytes | None:
    """The payload with its transfer and content encodings undone; None (``problem`` set) if they fail."""
    from fastwarc.stream_io import BrotliReader, ChunkedReader, GzipReader, ZstdReader

    content = entry.content_encoding
    data = raw
    if entry.transfer_encoding == "chunked":
        try:
            data = ChunkedReader(io.BytesIO(raw)).read()
        except OSError:
            data = raw  # crawlers often store the body de-chunked and keep the header: take it as it is
    if content in ("", "identity"):
        return data
    try:
        if content in ("gzip", "x-gzip"):
            return GzipReader(io.BytesIO(data)).read()
        if content == "br":
            return BrotliReader(io.BytesIO(data)).read()
        if content == "zstd":
            return ZstdReader(io.BytesIO(data)).read()
        if content == "deflate":
            try:
                return zlib.decompress(data)
            except zlib.error:
                return zlib.decompress(data, -zlib.MAX_WBITS)  # raw deflate, as some servers send it
    except (OSError, zlib.error) as exc:
        entry.problem = f"undecodable_payload: Content-Encoding {content} ({exc})"
        return None
    entry.problem = f"undecodable_payload: unknown Content-Encoding {content!r}"
    return None


def _media_type(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def payload_offset(path: str, entry: WarcEntry) -> int | None:
    """Where the stored payload of a plain-WARC record starts in the file, checked against its first bytes."""
    with open(path, "rb") as handle:
        handle.seek(entry.offset)
        start = handle.read(HEADER_LIMIT)
        end = start.find(b"\r\n\r\n")
        if end < 0 or entry.block_length is None or entry.payload_length is None:
            return None
        offset = entry.offset + end + 4 + entry.block_length - entry.payload_length
        handle.seek(offset)
        if handle.read(len(entry.head)) != entry.head:
            return None
    return offset


def tail_problem(path: str, last_offset: int | None) -> str | None:
    """Why the file ends badly after its last readable record (records lost with it), or None."""
    size = os.path.getsize(path)
    start = last_offset or 0
    with open(path, "rb") as handle:
        handle.seek(start)
        if handle.read(2) == _GZIP_MAGIC:
            end = _gzip_member_end(handle, start)
            if last_offset is None:
                end = start  # not even the first record could be read
        else:
            end = _plain_record_end(handle, start) if last_offset is not None else 0
        if end is None or end >= size:
            return None
        handle.seek(end)
        rest = handle.read(HEADER_LIMIT)
    if not rest.strip(b"\r\n\x00 "):
        return None
    lost = f"{size - end:,} bytes from byte {end:,} on could not be read"
    return f"truncated_record: the file ends inside a record or holds a damaged one; {lost}"


def _gzip_member_end(handle, start: int) -> int | None:
    """The end of the gzip member that starts at ``start``, or None when the file ends inside it."""
    handle.seek(start)
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    consumed = 0
    try:
        while chunk := handle.read(1024 * 1024):
            data = chunk
            while data and not decompressor.eof:  # bounded output per step: a small member can inflate a lot
                decompressor.decompress(data, 1024 * 1024)
                data = decompressor.unconsumed_tail
            if decompressor.eof:
                return start + consumed + len(chunk) - len(decompressor.unused_data)
            consumed += len(chunk)
    except zlib.error:
        return None
    return None


def _plain_record_end(handle, start: int) -> int | None:
    """The end of the plain WARC record at ``start`` (headers, block, CRLF CRLF), from its Content-Length."""
    handle.seek(start)
    head = handle.read(HEADER_LIMIT)
    end = head.find(b"\r\n\r\n")
    if end < 0:
        return None
    for line in head[:end].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return start + end + 4 + int(value) + 4
    return None
