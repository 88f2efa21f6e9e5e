"""WARC inputs: documents, images by byte range or copied, every record's fate, damage, charsets."""

import json

import pytest
from webfiles import PARAGRAPH, chunked, gzip_body, jpeg, page, png, request, response, write_warc

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadRecord
from fusionforge.pipelines.core.io import read_range
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions
from fusionforge.pipelines.readers.warc_index import build_index

SITE = "http://example.org"


def _read(path, options=None, index=None):
    file = InputFile(str(path), path.name, "web", "warc", index=str(index) if index else None)
    return list(read_file(file, options or ReaderOptions()))


def _meta(row):
    return json.loads(row[S.META])


def _image_bytes(item):
    return item["bytes"] if item["bytes"] is not None else read_range(item["uri"], item["offset"], item["size"])


def _crawl():
    """A crawl: a page showing one image twice and a missing one, its images, records that are no documents."""
    html = page(
        f"<h1>Cats</h1><p>{PARAGRAPH}</p><img src='img/red.png' alt='a red square'><p>{PARAGRAPH} Second.</p>"
        f"<img src='{SITE}/img/red.png'><img src='/img/gone.png' alt='gone'><p>Last words of the article here.</p>"
        "<img src='/img/blue.jpg' alt='blue'>"
    )
    return [
        request(f"{SITE}/cats.html"),
        response(f"{SITE}/cats.html", html.encode(), "text/html; charset=utf-8"),
        response(f"{SITE}/img/red.png", png("red"), "image/png"),
        response(f"{SITE}/img/blue.jpg", jpeg("blue"), "image/jpeg"),
        response(f"{SITE}/img/gone.png", b"<html>not here</html>", "text/html", status="404 Not Found"),
        response(f"{SITE}/doc.pdf", b"%PDF-1.4 ...", "application/pdf"),
        response(f"{SITE}/error", b"oops", "text/html", status="503 Service Unavailable"),
    ]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_every_record_gets_one_row_and_pages_keep_their_images_in_place(tmp_path, compress):
    path = write_warc(tmp_path / ("crawl.warc.gz" if compress else "crawl.warc"), _crawl(), compress)
    rows = _read(path)
    assert [row[S.INPUT_POSITION] for row in rows] == list(range(8))
    reasons = [row.get(S.DROP_REASON) or row.get(S.ERROR) for row in rows]
    assert reasons == [
        "read:not_a_response: a warcinfo record",
        "read:not_a_response: a request record",
        None,
        "read:not_html: image/png",
        "read:not_html: image/jpeg",
        "read:http_404",
        "read:not_html: application/pdf",
        "read:http_503",
    ]
    doc = rows[2]
    assert doc[S.MODALITY] == "interleaved" and doc[S.ID].startswith("web/urn:uuid:")
    kinds = [(s["type"], s["media_index"]) for s in doc[S.SEGMENTS]]
    assert kinds == [("text", None), ("image", 0), ("text", None), ("image", 0), ("image_url", None)] + [
        ("text", None),
        ("image", 1),
    ]
    assert "Home" not in doc[S.TEXT] and doc[S.TEXT].startswith("Cats")  # the navigation is boilerplate
    red, blue = doc[S.MEDIA]
    assert _image_bytes(red) == png("red") and _image_bytes(blue) == jpeg("blue")
    assert (red["format"], blue["format"]) == ("png", "jpeg")
    if compress:  # gzip: the bytes are copied into the record
        assert red["bytes"] is not None and red["offset"] is None
    else:  # plain: a byte range of the WARC itself
        assert red["bytes"] is None and red["uri"] == str(path) and red["offset"] > 0
    meta = _meta(doc)
    assert meta["url"] == f"{SITE}/cats.html" and meta["title"] == "A page" and meta["unresolved_images"] == 1
    assert [(i["url"], i["alt"], i["media_index"]) for i in meta["images"]] == [
        (f"{SITE}/img/red.png", "a red square", 0),
        (f"{SITE}/img/red.png", None, 0),
        (f"{SITE}/img/gone.png", "gone", None),
        (f"{SITE}/img/blue.jpg", "blue", 1),
    ]
    assert meta["images"][2]["unresolved"] == "http_404"
    assert doc[S.SEGMENTS][4]["text"] == f"{SITE}/img/gone.png"


def test_unresolved_images_can_be_left_out(tmp_path):
    html = page(f"<p>{PARAGRAPH}</p><img src='/nowhere.png' alt='x'><p>More text after the missing image.</p>")
    path = write_warc(tmp_path / "a.warc", [response(f"{SITE}/p.html", html.encode(), "text/html")], False)
    (_, doc) = _read(path, ReaderOptions(unresolved_images="drop"))
    assert [s["type"] for s in doc[S.SEGMENTS]] == ["text"]  # the text around the hole joins up
    assert doc[S.SEGMENTS][0]["text"].endswith("missing image.")
    (image,) = _meta(doc)["images"]
    assert image["media_index"] is None and image["unresolved"].startswith("not_in_warc")


def test_chunked_and_gzip_encoded_payloads_are_decoded_and_copied(tmp_path):
    html = page(f"<p>{PARAGRAPH}</p><img src='/c.png'><p>Closing words of the chunked page.</p>").encode()
    records = [
        response(
            f"{SITE}/c.html",
            chunked(gzip_body(html)),
            "text/html; charset=utf-8",
            headers=[("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")],
        ),
        response(f"{SITE}/c.png", chunked(png("green")), "image/png", headers=[("Transfer-Encoding", "chunked")]),
    ]
    path = write_warc(tmp_path / "chunked.warc", records, compress=False)
    _, doc, image = _read(path)
    assert doc[S.TEXT].endswith("Closing words of the chunked page.")
    (item,) = doc[S.MEDIA]
    assert item["bytes"] == png("green") and item["offset"] is None  # stored chunked: no byte range is the image
    assert image.get(S.DROP_REASON) == "read:not_html: image/png"


def test_charsets_other_than_utf8(tmp_path):
    japanese = "日本語の記事です。本文はここにあります。ウェブページの本文として十分な長さがあります。"
    russian = "Это русский текст статьи, достаточно длинный, чтобы считаться основным содержанием страницы."
    german = "Größere Übungen für Bären: ein deutscher Absatz mit Umlauten und genügend Wörtern im Text."
    records = [
        response(f"{SITE}/ja.html", page(f"<p>{japanese}</p>").encode("shift_jis"), "text/html; charset=Shift_JIS"),
        response(
            f"{SITE}/ru.html",
            page(f"<p>{russian}</p>", head='<meta charset="windows-1251">').encode("cp1251"),
            "text/html",
        ),
        response(
            f"{SITE}/de.html",
            page(
                f"<p>{german}</p>", head='<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
            ).encode("latin-1"),
            "text/html",
        ),
    ]
    path = write_warc(tmp_path / "charsets.warc.gz", records, compress=True)
    _, ja, ru, de = _read(path)
    assert ja[S.TEXT] == japanese and _meta(ja)["charset"] == "shift_jis"
    assert ru[S.TEXT] == russian and de[S.TEXT] == german


def test_images_are_found_across_the_warc_files_read_together(tmp_path):
    html = page(f"<p>{PARAGRAPH}</p><img src='/shared/x.png'><p>{PARAGRAPH}</p><img src='/old/y.png'>")
    pages = write_warc(tmp_path / "pages.warc", [response(f"{SITE}/p.html", html.encode(), "text/html")], False)
    images = [
        response(f"{SITE}/shared/x.png", png("navy"), "image/png"),
        response(f"{SITE}/old/y.png", b"", "text/html", status="301 Moved", headers=[("Location", "/new/y.png")]),
        response(f"{SITE}/new/y.png", png("olive"), "image/png"),
    ]
    media = write_warc(tmp_path / "media.warc", images, False)
    index = tmp_path / "index" / "urls.sqlite"
    build_index([str(pages), str(media)], index)
    _, doc = _read(pages, index=index)
    x, y = doc[S.MEDIA]
    assert x["uri"] == str(media) and read_range(x["uri"], x["offset"], x["size"]) == png("navy")
    assert read_range(y["uri"], y["offset"], y["size"]) == png("olive")  # through the redirect
    _, alone = _read(pages)  # read on its own, the file indexes only itself
    assert [i["unresolved"][:11] for i in _meta(alone)["images"]] == ["not_in_warc", "not_in_warc"]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_truncated_warc_keeps_the_records_before_the_cut_and_says_where(tmp_path, compress):
    html = page(f"<p>{PARAGRAPH}</p>").encode()
    records = [response(f"{SITE}/{n}.html", html, "text/html") for n in range(3)]
    whole = write_warc(tmp_path / ("w.warc.gz" if compress else "w.warc"), records, compress)
    data = whole.read_bytes()
    cut = tmp_path / ("cut.warc.gz" if compress else "cut.warc")
    cut.write_bytes(data[: len(data) - 40])  # inside the last record
    rows = _read(cut)
    assert [row.get(S.ERROR) is None for row in rows] == [True, True, True, False]
    assert rows[-1][S.ERROR].startswith("read:truncated_record")
    assert rows[-1][S.INPUT_POSITION] == 3
    with pytest.raises(BadRecord, match="truncated_record"):
        _read(cut, ReaderOptions(strict=True))


def test_records_the_crawler_cut_are_failed_and_their_images_unresolved(tmp_path):
    cut_by_crawler = {"WARC-Truncated": "length"}  # as Heritrix marks a record at its size limit
    html = page(f"<p>{PARAGRAPH}</p><img src='/big.png'>").encode()
    records = [
        response(f"{SITE}/p.html", html, "text/html"),
        response(f"{SITE}/big.png", png("red")[:20], "image/png", warc=cut_by_crawler),
        response(f"{SITE}/cut.html", html, "text/html", warc=cut_by_crawler),
    ]
    _, doc, image, cut = _read(write_warc(tmp_path / "t.warc", records, False))
    assert _meta(doc)["images"][0]["unresolved"].startswith("truncated_image")
    assert image[S.ERROR].startswith("read:truncated_record") and cut[S.ERROR].startswith("read:truncated_record")


def test_a_damaged_gzip_member_ends_the_file_with_one_row_after_the_records_before_it(tmp_path):
    html = page(f"<p>{PARAGRAPH}</p>").encode()
    records = [response(f"{SITE}/{n}.html", html, "text/html") for n in range(3)]
    data = bytearray(write_warc(tmp_path / "w.warc.gz", records, compress=True).read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\x1f\x8b\x08"]
    middle = starts[3] + 40  # inside the deflate data of the third page
    data[middle : middle + 30] = bytes(30)
    damaged = tmp_path / "damaged.warc.gz"
    damaged.write_bytes(bytes(data))
    rows = _read(damaged)
    assert [row.get(S.ERROR) is None for row in rows] == [True, True, True, False]
    assert rows[-1][S.ERROR].startswith("read:unreadable_file") and rows[-1][S.INPUT_POSITION] == 3
