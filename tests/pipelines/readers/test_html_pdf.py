"""Saved HTML pages and PDFs: interleaved documents with their images in place, and the reasons for bad ones."""

import io
import json

from PIL import Image
from webfiles import PARAGRAPH, jpeg, page, png, write_pdf

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions


def _read(path, root, fmt, options=None):
    rel = path.relative_to(root).as_posix()
    (row,) = read_file(InputFile(str(path), rel, "site", fmt), options or ReaderOptions())
    return row


def _meta(row):
    return json.loads(row[S.META])


def test_saved_page_resolves_relative_images_and_says_which_it_could_not(tmp_path):
    root = tmp_path / "input"
    site = root / "site"
    (site / "page_files").mkdir(parents=True)
    (site / "page_files" / "cat.png").write_bytes(png("orange"))
    (site / "page_files" / "icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.png").write_bytes(png("black"))
    body = (
        f"<p>{PARAGRAPH}</p><img src='page_files/cat.png' alt='the cat'><p>{PARAGRAPH} Again.</p>"
        "<img src='./page_files/cat.png'><img src='page_files/none.png'><img src='https://cdn.example.org/x.png'>"
        "<img src='../../secret.png'><img src='page_files/icon.svg'><p>The end of the saved page.</p>"
    )
    html = page(body, title="Caf\u00e9", head='<meta charset="windows-1252">').encode("cp1252")
    path = site / "page.html"
    path.write_bytes(html)
    row = _read(path, root, "html")
    assert row[S.MODALITY] == "interleaved" and row[S.ID] == "site/site/page.html#0"
    types = [(s["type"], s["media_index"]) for s in row[S.SEGMENTS]]
    assert types[:4] == [("text", None), ("image", 0), ("text", None), ("image", 0)]  # shown twice, stored once
    assert [t for t, _ in types[4:]] == ["image_url"] * 4 + ["text"]
    (cat,) = row[S.MEDIA]
    assert cat["uri"] == str(site / "page_files" / "cat.png") and cat["format"] == "png" and cat["bytes"] is None
    meta = _meta(row)
    assert meta["title"] == "Caf\u00e9" and meta["unresolved_images"] == 4
    reasons = [i["unresolved"].split(":")[0] for i in meta["images"][2:]]
    assert reasons == ["missing_file", "remote_image", "outside_input", "unsupported_image"]
    dropped = _read(path, root, "html", ReaderOptions(unresolved_images="drop"))
    assert [s["type"] for s in dropped[S.SEGMENTS]] == ["text", "image", "text", "image", "text"]


def test_page_with_nothing_to_keep_is_dropped(tmp_path):
    path = tmp_path / "empty.html"
    path.write_text("<html><body><script>var x = 1;</script></body></html>")
    row = _read(path, tmp_path, "html")
    assert row[S.DROP_REASON].startswith("read:empty_document")


def test_pdf_pages_interleave_text_and_images_in_reading_order(tmp_path):
    pages = [
        ["Text above the red picture on the first page.", png("red"), "Text below the red picture."],
        ["The second page starts with text.", jpeg("blue")],
    ]
    row = _read(write_pdf(tmp_path / "doc.pdf", pages, title="Two pages"), tmp_path, "pdf")
    segments = [(s["type"], s["text"], s["media_index"]) for s in row[S.SEGMENTS]]
    assert segments == [
        ("text", "Text above the red picture on the first page.", None),
        ("image", None, 0),
        ("text", "Text below the red picture.", None),
        ("text", "The second page starts with text.", None),
        ("image", None, 1),
    ]
    red, blue = row[S.MEDIA]
    assert (red["format"], blue["format"]) == ("png", "jpeg")
    assert Image.open(io.BytesIO(red["bytes"])).getpixel((0, 0)) == (255, 0, 0)
    assert blue["bytes"] == jpeg("blue")  # a JPEG is copied as the PDF stores it
    meta = _meta(row)
    assert meta["segment_pages"] == [1, 1, 1, 2, 2] and meta["pages"] == 2 and meta["title"] == "Two pages"


def test_encrypted_broken_and_image_only_pdfs_get_reasons(tmp_path):
    encrypted = write_pdf(tmp_path / "locked.pdf", [["A secret."]], password="user")
    scan = write_pdf(tmp_path / "scan.pdf", [[png("gray", 64)], [png("white", 64)]])
    whole = write_pdf(tmp_path / "whole.pdf", [["Some text."]]).read_bytes()
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(whole[: len(whole) // 3])
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n this is not a PDF body")
    assert _read(encrypted, tmp_path, "pdf")[S.ERROR].startswith("read:encrypted_pdf")
    assert _read(scan, tmp_path, "pdf")[S.DROP_REASON].startswith("read:image_only_pdf")
    assert _read(broken, tmp_path, "pdf")[S.ERROR].startswith("read:broken_pdf")
    assert _read(garbage, tmp_path, "pdf")[S.ERROR].startswith("read:broken_pdf")
