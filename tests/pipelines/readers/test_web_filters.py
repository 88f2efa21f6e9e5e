"""A crawl through shard -> dedupe --paragraphs -> filter --interleaved-rules: boilerplate and logos leave the pages."""

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from webfiles import PARAGRAPH, jpeg, page, png, response, write_warc

from fusionforge.cli.main import cli
from fusionforge.pipelines.core import schema as S

SITE = "http://news.example"
BOILERPLATE = "Subscribe to our newsletter for the latest stories from the harbour, delivered every morning."
SHARED = "The harbour master said the new pier would open to visitors before the summer season began."


def _story(n: int, extra: str = "") -> str:
    return f"<p>Story {n}: {PARAGRAPH} Told on day {n} of the festival.</p>{extra}<p>{BOILERPLATE}</p>"


def _crawl(root):
    photo = "<img src='/photo.jpg' alt='the harbour at dawn'>"
    logo = "<img src='/brand-logo.png' alt='News'>"
    icon = "<img src='/share.png' alt='share'>"
    pages = {
        "1": _story(1, f"{photo}<p>{SHARED}</p>{logo}{icon}"),
        "2": _story(2, f"{photo}<p>{SHARED}</p>"),
        "3": _story(3, photo),
        "4": f"<p>{BOILERPLATE}</p><p>{BOILERPLATE}</p>",  # nothing but the boilerplate
        "5": _story(1, f"{photo}<p>{SHARED}</p>{logo}{icon}"),  # page 1 again under another URL
    }
    records = [response(f"{SITE}/{n}.html", page(body).encode(), "text/html") for n, body in pages.items()]
    records += [
        response(f"{SITE}/photo.jpg", jpeg("navy", 320), "image/jpeg"),
        response(f"{SITE}/brand-logo.png", png("red", 200), "image/png"),
        response(f"{SITE}/share.png", png("blue", 24), "image/png"),
    ]
    return write_warc(root / "crawl.warc.gz", records, compress=True)


def _run(*args):
    result = CliRunner().invoke(cli, [*args, "--executor", "local"])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_boilerplate_paragraphs_and_logos_leave_the_pages_and_every_fate_is_in_the_ledgers(tmp_path):
    warc = _crawl(tmp_path)
    _run("shard", f"news={warc}", "-o", str(tmp_path / "shards"))
    dedup = tmp_path / "dedup"
    _run("dedupe", str(tmp_path / "shards"), "-o", str(dedup), "--only", "text", "--paragraphs")
    report = json.loads((dedup / "report.json").read_text())
    counts = report["dedupe"]["paragraphs"]
    assert (counts["documents"], counts["frequent_paragraphs"], counts["min_docs"]) == (4, 1, 3)
    # SHARED is in three pages, but one is page 1's copy (dropped as a duplicate): two documents, kept;
    # BOILERPLATE goes once from pages 1-3 and twice from page 4, which is then empty
    assert (counts["paragraphs_removed"], counts["documents_changed"], counts["documents_emptied"]) == (5, 4, 1)
    ledger = {r["input_position"]: r["reason"] for r in pq.read_table(dedup / "ledger.parquet").to_pylist()}
    assert ledger[4] == "dedupe:boilerplate_only"
    assert ledger[5].startswith("dedupe:exact_dup_of:")
    kept = {json.loads(r[S.META])["url"]: r for r in pq.read_table(dedup / "manifest.parquet").to_pylist()}
    assert sorted(kept) == [f"{SITE}/{n}.html" for n in (1, 2, 3)]
    for doc in kept.values():
        assert BOILERPLATE not in doc[S.TEXT] and all(BOILERPLATE not in (s["text"] or "") for s in doc[S.SEGMENTS])
        assert doc[S.TEXT] == "\n\n".join(s["text"] for s in doc[S.SEGMENTS] if s["type"] == "text")
    assert SHARED in kept[f"{SITE}/2.html"][S.TEXT]

    clean = tmp_path / "clean"
    config = tmp_path / "filters.yaml"
    config.write_text("filters:\n  - stage: image_checks_v1\n    min_side: 150\n")  # would drop a page with a logo
    _run("filter", str(dedup), "-o", str(clean), "--config", str(config), "--interleaved-rules")
    rows = {json.loads(r[S.META])["url"]: r for r in pq.read_table(clean / "manifest.parquet").to_pylist()}
    assert sorted(rows) == [f"{SITE}/{n}.html" for n in (1, 2, 3)]
    first = rows[f"{SITE}/1.html"]
    assert first["interleaved_nodes_v1__removed_url_pattern"] == 1  # brand-logo.png
    assert first["interleaved_nodes_v1__removed_too_small"] == 1  # the 24-pixel share icon
    assert [s["type"] for s in first[S.SEGMENTS]].count("image") == 1
    assert first["interleaved_doc_v1__images"] == 1
    filtered = json.loads((clean / "report.json").read_text())
    assert filtered["inputs"] == filtered["kept"] == 3
    stages = [f["stage"] for f in filtered["filters"]]
    assert stages == ["interleaved_nodes_v1", "interleaved_doc_v1", "image_checks_v1"]
