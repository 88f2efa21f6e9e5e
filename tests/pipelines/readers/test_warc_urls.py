"""Image URLs in a crawl are compared in normal form, and a revisit finds its original by its payload digest."""

import hashlib
import io
import json

import pyarrow.parquet as pq
import pytest
from warcio.warcwriter import WARCWriter
from webfiles import PARAGRAPH, page, png, response

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.settings import build_config
from fusionforge.pipelines.readers.warc_index import key_of
from fusionforge.pipelines.shard import ShardConfig, run_shard


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("HTTP://Example.ORG:80/a.png#top", "http://example.org/a.png"),
        ("https://example.org:443", "https://example.org/"),
        ("https://example.org:8443/A.png?x=1", "https://example.org:8443/A.png?x=1"),  # path and query keep case
        ("http://user@Example.org./p", "http://user@example.org/p"),
        ("http://[::1]:80/i.png", "http://[::1]/i.png"),
        ("http://example.org:port/x#f", "http://example.org:port/x"),  # not a port: as written, less the fragment
    ],
)
def test_urls_compare_in_normal_form(written, key):
    assert key_of(written) == key


def _warc(path, first: bytes, second: bytes):
    """A plain WARC: a page, two images, a revisit that names no URL (only the first image's digest), and one
    whose digest matches nothing."""
    html = page(
        f"<p>{PARAGRAPH}</p><img src='HTTP://Media.Example.org:80/a.png#zoom' alt='a'>"
        f"<p>{PARAGRAPH}</p><img src='//media.example.org/again.png' alt='again'>"
        f"<p>{PARAGRAPH}</p><img src='http://media.example.org/lost.png' alt='lost'><p>The end.</p>"
    )
    digest = "sha1:" + __import__("base64").b32encode(hashlib.sha1(first).digest()).decode()
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        for kind, url, body, http in (
            response("http://site.example.org/p.html", html.encode(), "text/html")[:4],
            response("http://media.example.org/a.png", first, "image/png")[:4],
            response("http://media.example.org/b.png", second, "image/png")[:4],
        ):
            writer.write_record(writer.create_warc_record(url, kind, payload=io.BytesIO(body), http_headers=http))
        for url, named in (
            ("http://media.example.org/again.png", digest),
            ("http://media.example.org/lost.png", "sha1:X"),
        ):
            revisit = writer.create_warc_record(url, "revisit", warc_headers_dict={"WARC-Payload-Digest": named})
            writer.write_record(revisit)
    return path


def test_a_page_finds_images_written_otherwise_and_revisits_by_digest(tmp_path):
    first, second = png("red", 32), png("blue", 32)
    warc = _warc(tmp_path / "crawl.warc", first, second)
    settings = {"inputs": (f"crawl={warc}",), "output": str(tmp_path / "out"), "executor": "local"}
    report = run_shard(build_config(ShardConfig, settings))
    assert report["kept"] == 1
    (doc,) = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    images = json.loads(doc[S.META])["images"]
    assert [i["url"] for i in images] == [
        "http://media.example.org/a.png",
        "http://media.example.org/again.png",
        "http://media.example.org/lost.png",
    ]
    assert [i["media_index"] for i in images] == [0, 1, None]
    assert images[2]["unresolved"].startswith("not_in_warc: the revisit's original")
    assert [m["sha256"] for m in doc[S.MEDIA]] == [hashlib.sha256(first).hexdigest()] * 2
    assert [s["type"] for s in doc[S.SEGMENTS]].count("image_url") == 1
