"""``fusionforge shard`` on a folder of WARCs, saved pages and PDFs: formats found, images found across WARC files."""

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from webfiles import PARAGRAPH, jpeg, page, png, response, write_pdf, write_warc

from fusionforge.cli.main import cli
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.settings import build_config
from fusionforge.pipelines.readers.plan import parse_input, plan_inputs
from fusionforge.pipelines.shard import ShardConfig, run_shard

SITE = "http://example.org"


def _raw(root: Path) -> Path:
    """A crawl split over a plain and a gzip WARC, a saved page with its files, a PDF, and unnamed copies."""
    html = page(f"<p>{PARAGRAPH}</p><img src='/a.png' alt='a'><p>{PARAGRAPH}</p><img src='/b.jpg'><p>The end.</p>")
    crawl = root / "crawl"
    crawl.mkdir(parents=True)
    write_warc(crawl / "1-pages.warc", [response(f"{SITE}/p.html", html.encode(), "text/html")], compress=False)
    images = [response(f"{SITE}/a.png", png("red"), "image/png"), response(f"{SITE}/b.jpg", jpeg("blue"), "image/jpeg")]
    write_warc(crawl / "2-media.warc.gz", images, compress=True)
    saved = root / "saved"
    (saved / "p_files").mkdir(parents=True)
    (saved / "p_files" / "c.png").write_bytes(png("green"))
    (saved / "p.html").write_text(page(f"<p>{PARAGRAPH}</p><img src='p_files/c.png'><p>Saved page end.</p>"))
    write_pdf(root / "paper.pdf", [["A paper with one figure.", png("gray")]])
    return root


def _shard(inputs, out, **kwargs):
    settings = {"inputs": tuple(inputs), "output": str(out), "executor": "local", "partition_mb": 0.001, **kwargs}
    return run_shard(build_config(ShardConfig, settings))


def test_formats_are_told_by_extension_then_by_content(tmp_path):
    raw = _raw(tmp_path / "raw")
    (raw / "crawl" / "2-media.warc.gz").rename(raw / "crawl" / "media.bin")  # a name that says nothing
    (raw / "notes.css").write_text("body { color: red }")
    plan = plan_inputs([parse_input(str(raw))], partition_mb=512)
    formats = {Path(f.path).name: f.format for p in plan.partitions for f in p.files}
    assert formats == {"1-pages.warc": "warc", "media.bin": "warc", "p.html": "html", "paper.pdf": "pdf"}
    skipped = {s.reason: [Path(f).name for f in s.files] for s in plan.skipped}
    assert skipped == {"listing_media": ["c.png"], "unknown_format": ["notes.css"]}


def test_shard_reads_web_inputs_and_finds_images_in_the_other_warc(tmp_path):
    raw = _raw(tmp_path / "raw")
    out = tmp_path / "out"
    report = _shard([f"crawl={raw / 'crawl'}", f"saved={raw / 'saved'}", f"papers={raw / 'paper.pdf'}"], out)
    assert report["partitions"] == 4  # each file alone: the page and its images are read in different partitions
    assert report["inputs"] == 2 + 3 + 1 + 1 == report["kept"] + report["dropped"] + report["failed"]
    assert (report["kept"], report["failed"]) == (3, 0)
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    assert sorted(r["reason"] or "kept" for r in ledger if r[S.SOURCE] == "crawl") == [
        "kept",
        "read:not_a_response: a warcinfo record",
        "read:not_a_response: a warcinfo record",
        "read:not_html: image/jpeg",
        "read:not_html: image/png",
    ]
    manifest = {r[S.SOURCE]: r for r in pq.read_table(out / "manifest.parquet").to_pylist()}
    doc = manifest["crawl"]
    assert [s["type"] for s in doc[S.SEGMENTS]] == ["text", "image", "text", "image", "text"]
    wanted = [hashlib.sha256(png("red")).hexdigest(), hashlib.sha256(jpeg("blue")).hexdigest()]
    assert [m["sha256"] for m in doc[S.MEDIA]] == wanted
    for item in doc[S.MEDIA]:  # the shard holds the image bytes themselves
        with open(out / item["uri"], "rb") as handle:
            handle.seek(item["offset"])
            assert hashlib.sha256(handle.read(item["size"])).hexdigest() == item["sha256"]
    assert manifest["saved"][S.MEDIA][0]["sha256"] == hashlib.sha256(png("green")).hexdigest()
    assert json.loads(manifest["papers"][S.META])["segment_pages"] == [1, 1]
    assert not (out / "_work" / "web_index").exists()  # scratch, removed once the run is finished


@pytest.mark.ray
def test_ray_reads_the_warc_set_like_the_local_run(ray_session, tmp_path):
    raw = _raw(tmp_path / "raw")
    local, distributed = tmp_path / "local", tmp_path / "ray"
    _shard([f"crawl={raw / 'crawl'}"], local)
    _shard([f"crawl={raw / 'crawl'}"], distributed, executor="ray")
    shards = sorted(p.name for p in (local / "shards").glob("*.tar"))
    assert shards == sorted(p.name for p in (distributed / "shards").glob("*.tar"))
    for name in shards:
        assert (local / "shards" / name).read_bytes() == (distributed / "shards" / name).read_bytes()


def test_cli_leaves_unresolved_images_out_on_request(tmp_path):
    raw = _raw(tmp_path / "raw")
    pages = raw / "crawl" / "1-pages.warc"  # alone: its images are in the other file
    args = ["shard", str(pages), "-o", str(tmp_path / "o"), "--executor", "local", "--unresolved-images", "drop"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (doc,) = pq.read_table(tmp_path / "o" / "manifest.parquet").to_pylist()
    assert [s["type"] for s in doc[S.SEGMENTS]] == ["text"]
    assert json.loads(doc[S.META])["unresolved_images"] == 2


def test_batches_close_early_when_their_rows_carry_copied_image_bytes(tmp_path, monkeypatch):
    from fusionforge.pipelines import shard
    from fusionforge.pipelines.readers.base import ReaderOptions

    for n in range(4):
        write_pdf(tmp_path / f"{n}.pdf", [[f"Paper {n}.", png("red", 64)]])
    plan = plan_inputs([parse_input(str(tmp_path))], partition_mb=512)
    source = shard.IngestSource(plan.partitions, ReaderOptions())
    assert [batch.num_rows for batch in source.read(0)] == [4]
    monkeypatch.setattr(shard, "BATCH_BYTES", 1)
    assert [batch.num_rows for batch in source.read(0)] == [1, 1, 1, 1]
