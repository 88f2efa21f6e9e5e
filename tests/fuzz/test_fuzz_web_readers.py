"""Property-based fuzzing of the WARC, HTML and PDF readers with mutated bytes (see test_fuzz_readers.py).

For any bytes: no exception escapes (reading, then storing the rows as Arrow), each WARC record
position gets at most one row, and an intact prefix of records is read as it was.
"""

from __future__ import annotations

import io
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions
from fusionforge.pipelines.readers.guard import records_table

FUZZ = settings(
    max_examples=int(os.environ.get("FUSIONFORGE_FUZZ_EXAMPLES", "25")),
    derandomize="FUSIONFORGE_FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
PAGE = (
    b"<html><body><article><p>Words of the page, enough of them to count.</p><img src='/i.png'></article></body></html>"
)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    return buffer.getvalue()


def _warc(compress: bool) -> bytes:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=compress)
    for url, body, kind in [("http://x.org/p", PAGE, "text/html"), ("http://x.org/i.png", _png(), "image/png")] * 2:
        http = StatusAndHeaders("200 OK", [("Content-Type", kind)], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    return buffer.getvalue()


WARCS = {False: _warc(False), True: _warc(True)}


def _mutated(data: bytes, edits: list[tuple[int, bytes]], cut: int | None) -> bytes:
    out = bytearray(data)
    for at, piece in edits:
        start = at % max(1, len(out))
        out[start : start + len(piece)] = piece
    return bytes(out[: cut % (len(out) + 1)] if cut is not None else out)


def _rows(tmp_path, name: str, data: bytes, fmt: str) -> list[dict]:
    path = tmp_path / name
    path.write_bytes(data)
    rows = list(read_file(InputFile(str(path), name, "fuzz", fmt), ReaderOptions()))
    records_table(rows, S.RECORD_SCHEMA)  # storable
    return rows


edits = st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=40)), max_size=4)


@FUZZ
@given(compress=st.booleans(), edits=edits, cut=st.none() | st.integers(0, 10_000))
def test_a_mutated_warc_never_raises_and_gives_one_row_per_position(tmp_path_factory, compress, edits, cut):
    name = "f.warc.gz" if compress else "f.warc"
    rows = _rows(tmp_path_factory.mktemp("warc"), name, _mutated(WARCS[compress], edits, cut), "warc")
    positions = [row[S.INPUT_POSITION] for row in rows]
    assert positions == sorted(set(positions))
    if not edits and cut is None:
        assert [row.get(S.ERROR) for row in rows] == [None] * 4


@FUZZ
@given(data=st.binary(max_size=2000) | st.builds(lambda e: _mutated(PAGE, e, None), edits))
def test_any_html_bytes_give_one_row(tmp_path_factory, data):
    (row,) = _rows(tmp_path_factory.mktemp("html"), "p.html", data, "html")
    assert row[S.INPUT_POSITION] == 0


@FUZZ
@given(edits=edits, cut=st.none() | st.integers(0, 4000))
def test_a_mutated_pdf_gives_one_row_and_never_raises(tmp_path_factory, edits, cut):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.cell(text="A line of text.")
    pdf.image(io.BytesIO(_png()), w=20)
    (row,) = _rows(tmp_path_factory.mktemp("pdf"), "d.pdf", _mutated(bytes(pdf.output()), edits, cut), "pdf")
    assert row[S.INPUT_POSITION] == 0
