"""WARC files (``.warc``, ``.warc.gz``): every HTML response becomes an interleaved document.

Every WARC record gets one row, so the ledger accounts for the whole file: an HTML response (or
resource) with status 2xx is a document (main content and images in order, ``html_extract.py``);
any other record is dropped with its reason (``not_a_response`` for requests, metadata, warcinfo
and revisits, ``http_404`` and the like, ``not_html`` for images and other types); a damaged one
fails (``truncated_record``, ``undecodable_payload``, ``record_too_large``). Images are found
through the URL index of all WARC files read together (``warc_index.py``): in a plain WARC an
image is a byte range of the file, in a gzip WARC (or with a transfer or content encoding) its
decoded bytes are copied into the record. Reading a lone file without an index indexes it first.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import MB, InputFile, ReaderOptions, dropped_row, failed_row, media_ref
from fusionforge.pipelines.readers.guard import guarded
from fusionforge.pipelines.readers.html_extract import HTML_TYPES, extract_page
from fusionforge.pipelines.readers.rows import too_large
from fusionforge.pipelines.readers.warc_index import INDEX_FILE, Capture, UrlIndex, build_index, key_of
from fusionforge.pipelines.readers.warc_records import WarcEntry, iter_entries
from fusionforge.pipelines.readers.web_document import Resolved, page_record

DOCUMENT_RECORDS = ("response", "resource")


def read_warc(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """One row per WARC record of the file, in file order, then one for a damaged tail."""
    limit = int(options.max_record_mb * MB)
    with _index_for(file) as index:
        for entry in iter_entries(file.path, want=lambda entry: limit if _is_document(entry) else None):
            build = partial(_row, file, entry, index, options)
            yield guarded(file, entry.position, _modality(entry), options, build, entry.record_id)


@contextmanager
def _index_for(file: InputFile) -> Iterator[UrlIndex]:
    """The index of the file's WARC set, or one made for this file alone (a reader called on its own)."""
    if file.index is not None:
        index = UrlIndex(file.index)
        try:
            yield index
        finally:
            index.close()
        return
    with tempfile.TemporaryDirectory(prefix="fusionforge-warc-") as folder:
        path = Path(folder) / INDEX_FILE
        build_index([file.path], path)
        index = UrlIndex(path)
        try:
            yield index
        finally:
            index.close()


def _is_document(entry: WarcEntry) -> bool:
    status_ok = entry.status is None or 200 <= entry.status < 300
    return entry.record_type in DOCUMENT_RECORDS and status_ok and _is_html(entry)


def _is_html(entry: WarcEntry) -> bool:
    if entry.content_type is not None:
        return entry.content_type in HTML_TYPES
    head = entry.head.lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _modality(entry: WarcEntry) -> str:
    if (entry.content_type or "").startswith("image/"):
        return Modality.IMAGE
    return Modality.INTERLEAVED if _is_html(entry) else Modality.TEXT


def _row(file: InputFile, entry: WarcEntry, index: UrlIndex, options: ReaderOptions) -> dict[str, Any]:
    meta = _meta(entry)
    modality = _modality(entry)
    if entry.problem:
        return failed_row(file, entry.position, entry.problem, modality, options, entry.record_id)
    if entry.record_type not in DOCUMENT_RECORDS:
        return dropped_row(
            file, entry.position, f"not_a_response: a {entry.record_type} record", modality, meta, entry.record_id
        )
    if entry.status is not None and not 200 <= entry.status < 300:
        return dropped_row(file, entry.position, f"http_{entry.status}", modality, meta, entry.record_id)
    if not _is_html(entry):
        kind = entry.content_type or "no Content-Type"
        return dropped_row(file, entry.position, f"not_html: {kind}", modality, meta, entry.record_id)
    if entry.payload is None:
        size = too_large(f"record {entry.position}", entry.payload_length or 0, options.max_record_mb)
        return failed_row(file, entry.position, size, modality, options, entry.record_id)
    page = extract_page(entry.payload, entry.charset)
    resolve = partial(_resolve, index, urljoin(entry.url or "", page.base or ""))
    return page_record(file, entry.position, page, resolve, options, meta, entry.record_id)


def _meta(entry: WarcEntry) -> dict[str, Any]:
    meta = {
        "url": entry.url,
        "warc_date": entry.date,
        "warc_type": entry.record_type,
        "warc_offset": entry.offset,
        "http_status": entry.status,
        "content_type": entry.content_type,
    }
    return {key: value for key, value in meta.items() if value is not None}


def _resolve(index: UrlIndex, page_url: str, src: str, budget: int) -> Resolved:
    """An image source of a page (its URL in normal form): a byte range of a plain WARC, or a copy of its bytes."""
    url = key_of(urljoin(page_url, src))
    if not url.startswith(("http://", "https://")):
        return Resolved(url, reason=f"not_in_warc: {url.split(':', 1)[0]} URL")
    found = index.lookup(url)
    if isinstance(found, str):
        return Resolved(url, reason=found)
    if found.payload_offset is not None:
        return Resolved(url, media=media_ref("image", found.path, found.format, found.payload_offset, found.size))
    return _copied(index, url, found, budget)


def _copied(index: UrlIndex, url: str, capture: Capture, budget: int) -> Resolved:
    data = index.copy(capture, budget)
    if isinstance(data, str):
        return Resolved(url, reason=data)
    return Resolved(url, media=media_ref("image", url, capture.format, data=data))
