"""Saved HTML pages (``.html``, ``.htm``): each file is one interleaved document.

The main content and its images come out as for a WARC page (``html_extract.py``). An image's
source is a path relative to the page (or to its ``<base href>``), as a browser's "save page" writes
it (``page_files/a.png``); the file is referenced whole, never copied. A source that leaves the
page's input folder, names no file or names a remote URL is unresolved: fusionforge never
downloads, and a page must not point the reader at arbitrary files of the machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import (
    MB,
    InputFile,
    ReaderOptions,
    failed_row,
    media_kind_of,
    media_ref,
    sniff_image,
)
from fusionforge.pipelines.readers.guard import guarded
from fusionforge.pipelines.readers.html_extract import extract_page
from fusionforge.pipelines.readers.rows import too_large
from fusionforge.pipelines.readers.web_document import Resolved, page_record


def read_html(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """One interleaved record for one saved page (position 0)."""
    yield guarded(file, 0, Modality.INTERLEAVED, options, partial(_page, file, options))


def _page(file: InputFile, options: ReaderOptions) -> dict[str, Any]:
    size = os.path.getsize(file.path)
    if size > options.max_record_mb * MB:
        return failed_row(file, 0, too_large(file.rel, size, options.max_record_mb), Modality.INTERLEAVED, options)
    with open(file.path, "rb") as handle:
        page = extract_page(handle.read())
    root = _input_root(file)
    folder = Path(file.path).parent
    if page.base and not urlsplit(page.base).scheme:
        folder = folder / unquote(urlsplit(page.base).path)
    return page_record(file, 0, page, partial(_resolve, folder, root), options, {"path": file.rel})


def _input_root(file: InputFile) -> Path:
    """The folder the input names: ``rel`` is the page's path below it."""
    path = Path(file.path).resolve()
    depth = len(Path(file.rel).parts)
    return path.parents[depth - 1] if depth else path.parent


def _resolve(folder: Path, root: Path, src: str, budget: int) -> Resolved:
    """A local image file named by a page, referenced whole."""
    parts = urlsplit(src)
    if parts.scheme and len(parts.scheme) > 1 and parts.scheme != "file":
        return Resolved(src, reason=f"remote_image: a {parts.scheme} URL; fusionforge never downloads")
    path = (folder / unquote(parts.path)).resolve()
    if not path.is_relative_to(root):
        return Resolved(str(path), reason="outside_input: the image lies outside the page's input folder")
    if not path.is_file():
        return Resolved(str(path), reason="missing_file: no such image file")
    with open(path, "rb") as handle:
        fmt = sniff_image(handle.read(16))
    if fmt is None:
        named = media_kind_of(path.name)
        return Resolved(str(path), reason=f"unsupported_image: {named[1] if named else path.suffix or 'unknown'}")
    return Resolved(str(path), media=media_ref("image", str(path), fmt, size=path.stat().st_size))
