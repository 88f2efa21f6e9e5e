"""Small real web inputs for the reader tests: WARCs written with warcio, images with Pillow, PDFs with fpdf2."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def png(color: str, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(color: str, size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "JPEG")
    return buffer.getvalue()


def chunked(data: bytes, size: int = 7) -> bytes:
    """``data`` in HTTP chunked transfer encoding."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def response(
    url: str,
    body: bytes,
    content_type: str,
    status: str = "200 OK",
    headers: list | None = None,
    warc: dict | None = None,
) -> tuple:
    """A response record: HTTP status and headers, the body as sent, extra WARC headers."""
    http = StatusAndHeaders(status, [("Content-Type", content_type), *(headers or [])], protocol="HTTP/1.1")
    return ("response", url, body, http, warc)


def request(url: str) -> tuple:
    http = StatusAndHeaders(f"GET {url} HTTP/1.1", [("Host", "example.org")], is_http_request=True)
    return ("request", url, b"", http, None)


def write_warc(path: Path, records: list, compress: bool, info: bool = True) -> Path:
    """A WARC of ``records`` (``response``/``request``), one gzip member per record when ``compress``."""
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=compress)
        if info:
            payload = io.BytesIO(b"software: fusionforge tests\r\n")
            writer.write_record(writer.create_warc_record("", "warcinfo", payload=payload))
        for record_type, url, body, http, extra in records:
            record = writer.create_warc_record(
                url, record_type, payload=io.BytesIO(body), http_headers=http, warc_headers_dict=extra
            )
            writer.write_record(record)
    return path


def gzip_body(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def page(body: str, title: str = "A page", head: str = "") -> str:
    nav = '<nav><a href="/">Home</a> <a href="/about">About us</a> <img src="/logo.png" alt="logo"></nav>'
    head = f"<head><title>{title}</title>{head}</head>"
    return f"<!doctype html><html>{head}<body>{nav}<article>{body}</article></body></html>"


PARAGRAPH = "This paragraph has enough words in it to be taken for the main content of the page by any extractor."


def write_pdf(path: Path, pages: list[list], title: str | None = None, password: str | None = None) -> Path:
    """A PDF whose pages hold paragraphs (str) and images (encoded bytes), top to bottom, made with fpdf2."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for parts in pages:
        pdf.add_page()
        for part in parts:
            if isinstance(part, str):
                pdf.multi_cell(0, 8, part, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            else:
                pdf.image(io.BytesIO(part), w=40)
    if title:
        pdf.set_title(title)
    if password:
        pdf.set_encryption(owner_password="owner", user_password=password)
    pdf.output(str(path))
    return path
