"""The rows of URL listings (JSONL, plain or compressed, or Parquet) as numbered work items.

Rows are numbered over every listing file in order (``key``); the key names the row's image file and
its partition (``key // partition_size``), so the same listing gives the same names and partitions on
every run, which is what makes a resumed run idempotent. A row that cannot be read, or has no URL,
is an item with a reason and no request (``--strict``: ``BadRecord`` instead).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fusionforge.pipelines.core.errors import BadRecord
from fusionforge.pipelines.core.io import expand_paths
from fusionforge.pipelines.fetch.config import FetchConfig
from fusionforge.pipelines.readers.base import InputFile
from fusionforge.pipelines.readers.plan import STRUCTURED_SUFFIXES, parse_input
from fusionforge.pipelines.readers.rows import iter_structured

# The fields fetch writes itself into each pairs line; a listing column of one of these names is carried
# as ``listing_{name}``.
OWN_FIELDS = ("id", "image", "caption", "url", "width", "height", "sha256")
_PORTS = {"http": 80, "https": 443}


@dataclass
class Item:
    """One listing row: its URL and the fields its pairs line carries, or why it gets no request."""

    key: int
    file: InputFile
    position: int
    url: str | None = None
    host: str | None = None  # host:port, the unit of the per-host limit
    fields: dict[str, Any] = field(default_factory=dict)  # caption and the carried columns
    reason: str | None = None  # set: decided without a request (``read:...`` failed, ``fetch:bad_url`` dropped)
    failed: bool = False


def listing_files(specs: tuple[str, ...]) -> list[InputFile]:
    """The files the ``NAME=PATH`` / ``PATH`` specs name (folders and globs expanded, sorted), in order."""
    files = []
    for text in specs:
        spec = parse_input(text)
        for path in expand_paths(spec.path, STRUCTURED_SUFFIXES):
            files.append(InputFile(str(path), path.name, spec.source, "pairs"))
    return files


def listings_fingerprint(files: list[InputFile]) -> list[list[Any]]:
    """Each listing's path, source, size and sha256: a resumed run must read the very same rows."""
    found = []
    for file in files:
        with open(file.path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        found.append([file.path, file.source, os.path.getsize(file.path), digest])
    return found


def key_name(key: int) -> str:
    """The row's name: its image file's stem and its pairs line's id (``000000042``)."""
    return f"{key:09d}"


def read_items(files: list[InputFile], cfg: FetchConfig) -> Iterator[Item]:
    """Every row of ``files`` as an ``Item``, numbered from 0 over all of them."""
    key = 0
    for file in files:
        for position, row in iter_structured(file, cfg.max_record_mb):
            if isinstance(row, str):
                item = _refused(file, key, position, f"read:{row}", cfg)
            else:
                item = _item(file, key, position, row, cfg)
            yield item
            key += 1


def _item(file: InputFile, key: int, position: int, row: dict[str, Any], cfg: FetchConfig) -> Item:
    url = row.get(cfg.url_col)
    if not isinstance(url, str) or not url.strip():
        return _refused(file, key, position, f"read:missing_field: no URL in column {cfg.url_col!r}", cfg)
    url = url.strip()
    item = Item(key, file, position, url=url, fields=carried_fields(row, cfg))
    item.host = host_of(url)
    if item.host is None:
        item.reason = f"fetch:bad_url: not an http(s) URL: {url[:200]}"
    return item


def _refused(file: InputFile, key: int, position: int, reason: str, cfg: FetchConfig) -> Item:
    if cfg.run.strict:
        raise BadRecord(reason, where=f"{file.path}:{position}")
    return Item(key, file, position, reason=reason, failed=True)


def host_of(url: str) -> str | None:
    """``host:port`` of an http(s) URL; None for anything else (another scheme, no host, a bad port)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _PORTS or not parts.hostname:
            return None
        return f"{parts.hostname}:{parts.port or _PORTS[scheme]}"
    except ValueError:
        return None


def carried_fields(row: dict[str, Any], cfg: FetchConfig) -> dict[str, Any]:
    """The caption and the listing's other columns (``--extra-col``, default all) that JSON can hold."""
    caption = row.get(cfg.caption_col)
    fields: dict[str, Any] = {"caption": caption if isinstance(caption, str) else None}
    names = cfg.extra_cols if cfg.extra_cols is not None else row.keys()
    for name in names:
        if name in (cfg.url_col, cfg.caption_col) or name not in row or not _json_safe(row[name]):
            continue
        fields[f"listing_{name}" if name in OWN_FIELDS else name] = row[name]
    return fields


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return not isinstance(value, float) or value == value and abs(value) != float("inf")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
