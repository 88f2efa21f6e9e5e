"""PDF files: one interleaved document per file, text and embedded images per page in reading order.

PDFium (through pypdfium2: Apache-2.0/BSD-3, Chrome's PDF engine, prebuilt wheels, no network)
gives each page's characters in content order with their boxes and each image object with its
bounds. An image goes before the first character whose box lies lower on the page than the
image's middle, so on a one-column page it stands between the lines above and below it; on a
multi-column page it stands at the first such line of the column read first (PDFium's order).
Each page starts a new text part, and ``meta.segment_pages`` gives the page number (from 1) of every
segment. JPEG images are copied as they are stored; other images are decoded by PDFium and
stored as PNG (the PDF's own bytes are not an image file, so they cannot be referenced by range).

Reasons: an encrypted PDF that needs a password fails (``encrypted_pdf``), one PDFium cannot open
or whose page cannot be loaded fails (``broken_pdf``), a PDF with images but no text layer (a
scan) is dropped (``image_only_pdf``: it needs OCR), one with neither is dropped (``empty_document``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import partial
from typing import Any

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import (
    MB,
    InputFile,
    ReaderOptions,
    dropped_row,
    failed_row,
    media_ref,
    record_row,
)
from fusionforge.pipelines.readers.guard import guarded

_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD


def read_pdf(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """One interleaved record for one PDF (position 0)."""
    yield guarded(file, 0, Modality.INTERLEAVED, options, partial(_document, file, options))


def _document(file: InputFile, options: ReaderOptions) -> dict[str, Any]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(file.path)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == _PASSWORD_ERROR:
            return failed_row(file, 0, "encrypted_pdf: it needs a password", Modality.INTERLEAVED, options)
        return failed_row(file, 0, f"broken_pdf: {exc}", Modality.INTERLEAVED, options)
    try:
        return _record(file, pdf, options)
    finally:
        pdf.close()


def _record(file: InputFile, pdf, options: ReaderOptions) -> dict[str, Any]:
    import pypdfium2 as pdfium

    segments: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    pages: list[int] = []
    budget = [int(options.max_record_mb * MB)]
    skipped: list[dict[str, Any]] = []
    for number in range(len(pdf)):
        try:
            parts = _page_parts(pdf[number], budget, skipped, number + 1, file.path)
        except pdfium.PdfiumError as exc:
            return failed_row(file, 0, f"broken_pdf: page {number + 1}: {exc}", Modality.INTERLEAVED, options)
        for part in parts:
            if isinstance(part, str):
                segments.append({"type": "text", "text": part, "media_index": None})
            else:
                segments.append({"type": "image", "text": None, "media_index": len(media)})
                media.append(part)
            pages.append(number + 1)
    meta: dict[str, Any] = {"path": file.rel, "pages": len(pdf), "segment_pages": pages}
    meta.update({k.lower(): v for k, v in pdf.get_metadata_dict(skip_empty=True).items() if k in ("Title", "Author")})
    if skipped:
        meta["skipped_images"] = skipped
    texts = [s["text"] for s in segments if s["type"] == "text"]
    if not texts:
        reason = "image_only_pdf: no text layer (a scan; it needs OCR)" if media or skipped else "empty_document"
        return dropped_row(file, 0, reason, Modality.INTERLEAVED, meta)
    return record_row(file, 0, Modality.INTERLEAVED, "\n\n".join(texts), media=media, segments=segments, meta=meta)


def _page_parts(
    page, budget: list[int], skipped: list[dict[str, Any]], number: int, uri: str
) -> list[str | dict[str, Any]]:
    """A page's text pieces and image media items, in reading order."""
    import pypdfium2.raw as raw

    textpage = page.get_textpage()
    try:
        tops = _char_tops(textpage)
        anchored: list[tuple[int, float, dict[str, Any]]] = []
        for image in page.get_objects(filter=(raw.FPDF_PAGEOBJ_IMAGE,)):
            left, bottom, right, top = image.get_bounds()
            item = _image_item(image, budget, f"{uri}#page={number}")
            if isinstance(item, str):
                skipped.append({"page": number, "reason": item})
                continue
            middle = (top + bottom) / 2
            split = next((i for i, char_top in tops if char_top < middle), textpage.count_chars())
            anchored.append((split, -top, item))
        anchored.sort(key=lambda entry: (entry[0], entry[1]))
        parts: list[str | dict[str, Any]] = []
        start = 0
        for split, _, item in anchored:
            _add_text(parts, textpage.get_text_range(start, split - start) if split > start else "")
            parts.append(item)
            start = max(start, split)
        _add_text(parts, textpage.get_text_range(start, textpage.count_chars() - start))
        return parts
    finally:
        textpage.close()


def _char_tops(textpage) -> list[tuple[int, float]]:
    """(index, top) of every character that has a box (PDFium's generated line breaks have none)."""
    tops = []
    for index in range(textpage.count_chars()):
        left, bottom, right, top = textpage.get_charbox(index)
        if right > left or top > bottom:
            tops.append((index, top))
    return tops


def _add_text(parts: list[str | dict[str, Any]], text: str) -> None:
    text = text.replace("\r\n", "\n").strip()
    if text:
        parts.append(text)


def _image_item(image, budget: list[int], uri: str) -> dict[str, Any] | str:
    """A media item with the image's bytes (JPEG as stored, else PNG), or why it is left out."""
    width, height = image.get_px_size()
    if width * height * 4 > budget[0]:
        return f"record_too_large: a {width}x{height} image, over what the document may still copy"
    if image.get_filters() == ["DCTDecode"]:
        data, fmt = bytes(image.get_data(decode_simple=False)), "jpeg"
    else:
        buffer = io.BytesIO()
        image.get_bitmap(render=False).to_pil().save(buffer, "PNG")
        data, fmt = buffer.getvalue(), "png"
    budget[0] -= len(data)
    return media_ref("image", uri, fmt, data=data)
