"""``fetch`` against a real HTTP server on 127.0.0.1: every kind of answer the web gives, each URL's fate in
the ledger with its status or error, the server's request counts (retries, no retry), and the output read
back by ``shard``."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from fusionforge.cli.main import cli
from fusionforge.pipelines.fetch.config import FetchConfig
from fusionforge.pipelines.fetch.media_server import MediaServer, Route, image_route, redirect_route
from fusionforge.pipelines.fetch.run import run_fetch

RETRIES = 2
MAX_BYTES = 50_000


def encoded(fmt: str, size: tuple[int, int], color=(200, 40, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


JPEG = encoded("JPEG", (64, 48))
PNG = encoded("PNG", (32, 20), (10, 200, 30))
BOMB = encoded("PNG", (2000, 2000))  # 4 MP of one colour: 12 kB on the wire
BIG = b"\xff\xd8" + bytes(MAX_BYTES + 10_000)


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: a connection there is refused


# path -> (route(s), expected status, expected reason kind or None, expected HTTP status, expected requests)
CASES = {
    "/ok.jpg": (image_route(JPEG), "kept", None, 200, 1),
    "/ok.png": (image_route(PNG, "image/png"), "kept", None, 200, 1),
    "/untyped": (Route(body=PNG), "kept", None, 200, 1),  # no Content-Type: the decoder decides
    "/404": (Route(status=404, body=b"gone"), "dropped", "fetch:http_404", 404, 1),
    "/410": (Route(status=410), "dropped", "fetch:http_410", 410, 1),
    "/500": (Route(status=500), "failed", "fetch:http_500", 500, 1 + RETRIES),
    "/503-then-ok.jpg": ([Route(status=503), Route(status=503), image_route(JPEG)], "kept", None, 200, 3),
    "/429.jpg": ([Route(status=429, headers={"Retry-After": "1"}), image_route(JPEG)], "kept", None, 200, 2),
    "/slow.jpg": (
        Route(body=JPEG, headers={"Content-Type": "image/jpeg"}, delay_s=4),
        "failed",
        "fetch:timeout",
        None,
        3,
    ),
    "/dripping.jpg": (
        Route(body=JPEG, headers={"Content-Type": "image/jpeg"}, chunk=100, drip_s=0.5),
        "failed",
        "fetch:timeout",
        None,
        1 + RETRIES,
    ),
    "/moved.jpg": (redirect_route("/target.png", 301), "kept", None, 200, 1),
    "/target.png": (image_route(PNG, "image/png"), "kept", None, 200, 2),  # listed itself and reached by /moved.jpg
    "/hop0": (redirect_route("/hop1"), "dropped", "fetch:too_many_redirects", None, 1),
    "/loop": (redirect_route("/loop"), "dropped", "fetch:too_many_redirects", None, 4),  # 1 + --max-redirects 3
    "/big-announced.jpg": (image_route(BIG), "dropped", "fetch:too_large", 200, 1),
    "/big-chunked.jpg": (
        Route(body=BIG, headers={"Content-Type": "image/jpeg"}, chunked=True, chunk=4096),
        "dropped",
        "fetch:too_large",
        200,
        1,
    ),
    "/page.html": (
        Route(body=b"<html>hi</html>", headers={"Content-Type": "text/html"}),
        "dropped",
        "fetch:not_an_image",
        200,
        1,
    ),
    "/truncated.jpg": (image_route(JPEG[: len(JPEG) // 2]), "dropped", "fetch:undecodable_image", 200, 1),
    "/text.jpg": (image_route(b"this is no image"), "dropped", "fetch:undecodable_image", 200, 1),
    "/bomb.png": (image_route(BOMB, "image/png"), "dropped", "fetch:too_many_pixels", 200, 1),
    "/noai.jpg": (image_route(JPEG, **{"X-Robots-Tag": "noai"}), "dropped", "fetch:opt_out_noai", 200, 1),
    "/noimageai.jpg": (
        image_route(JPEG, **{"X-Robots-Tag": "noimageai"}),
        "dropped",
        "fetch:opt_out_noimageai",
        200,
        1,
    ),
    "/noindex.jpg": (
        image_route(JPEG, **{"X-Robots-Tag": "nofollow, noindex"}),
        "dropped",
        "fetch:opt_out_noindex",
        200,
        1,
    ),
    "/none.jpg": (image_route(JPEG, **{"X-Robots-Tag": "none"}), "dropped", "fetch:opt_out_none", 200, 1),
    "/ours.jpg": (
        image_route(JPEG, **{"X-Robots-Tag": "fusionforge: noimageai"}),
        "dropped",
        "fetch:opt_out_noimageai",
        200,
        1,
    ),
    "/other-bot.jpg": (image_route(JPEG, **{"X-Robots-Tag": "otherbot: noai, noimageai"}), "kept", None, 200, 1),
}
# hop1 -> hop2 -> ... -> hop5 -> the image: one more hop than --max-redirects allows
CHAIN = {f"/hop{i}": redirect_route(f"/hop{i + 1}") for i in range(1, 5)} | {"/hop5": image_route(JPEG)}


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    """One run over a listing with every case (and rows that cannot be fetched), partitions of 4 rows."""
    folder = tmp_path_factory.mktemp("fetch")
    routes = {path: case[0] for path, case in CASES.items()} | CHAIN
    with MediaServer(routes) as server:
        rows = [
            {"url": server.url(path), "caption": f"caption of {path}", "license": "cc-by", "id": i}
            for i, path in enumerate(CASES)
        ]
        rows.append({"url": f"http://127.0.0.1:{refused_port()}/x.jpg", "caption": "nobody listens"})
        rows.append({"url": "ftp://example.org/a.jpg", "caption": "another scheme"})
        rows.append({"caption": "no url at all"})
        listing = folder / "web.jsonl"
        lines = [json.dumps(r) for r in rows]
        lines.insert(3, "{this is not json")
        listing.write_text("\n".join(lines) + "\n")
        cfg = FetchConfig(
            listings=(f"web={listing}",),
            output=str(folder / "out"),
            concurrency=8,
            per_host=8,
            timeout_s=1.0,
            retries=RETRIES,
            backoff_s=0.05,
            max_bytes=MAX_BYTES,
            max_pixels=1_000_000,  # the bomb has 4x as many
            max_redirects=3,
            contact="data-team@example.org",
            partition_size=4,
        )
        report = run_fetch(cfg)
        counts = {path: server.count(path) for path in routes}
        times = {"/429.jpg": server.times_of("/429.jpg")}
        agents = set(server.user_agents)
    return {"out": folder / "out", "report": report, "counts": counts, "times": times, "agents": agents, "rows": lines}


def ledger_rows(out: Path) -> list[dict]:
    return pq.read_table(out / "ledger.parquet").to_pylist()


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def kind_of(reason: str | None) -> str | None:
    return None if reason is None else reason.split(": ", 1)[0]


def test_every_url_has_one_ledger_row_with_its_fate_and_http_status(fetched):
    ledger = ledger_rows(fetched["out"])
    assert len(ledger) == len(fetched["rows"]) == fetched["report"]["inputs"]
    assert len({r["id"] for r in ledger}) == len(ledger)
    by_path = {path_of(r["url"]): r for r in ledger if (r["url"] or "").startswith("http://127.0.0.1")}
    for path, (_, status, reason, http_status, _) in CASES.items():
        row = by_path[path]
        assert (row["status"], kind_of(row["reason"]), row["http_status"]) == (status, reason, http_status), row
    report = fetched["report"]
    assert report["inputs"] == report["kept"] + report["dropped"] + report["failed"]
    assert report["kept"] == sum(case[1] == "kept" for case in CASES.values())


def test_rows_that_cannot_be_fetched_are_in_the_ledger_without_a_request(fetched):
    ledger = ledger_rows(fetched["out"])
    reasons = {kind_of(r["reason"]) for r in ledger}
    assert {"read:malformed_json", "read:missing_field", "fetch:bad_url", "fetch:connection"} <= reasons
    refused = next(r for r in ledger if r["reason"] and r["reason"].startswith("fetch:connection"))
    assert refused["status"] == "failed" and "3 attempts" in refused["reason"]
    bad = next(r for r in ledger if r["reason"] and r["reason"].startswith("fetch:bad_url"))
    assert bad["status"] == "dropped" and bad["url"] == "ftp://example.org/a.jpg"
    malformed = next(r for r in ledger if r["reason"] and r["reason"].startswith("read:malformed_json"))
    assert malformed["status"] == "failed" and malformed["input_position"] == 4  # JSONL lines count from 1


def test_the_server_saw_retries_only_where_they_belong(fetched):
    counts = fetched["counts"]
    for path, case in CASES.items():
        assert counts[path] == case[4], (path, counts[path])
    assert counts["/hop3"] == 1 and counts["/hop4"] == 0  # --max-redirects 3 stops the chain before the image
    first, second = fetched["times"]["/429.jpg"]
    assert second - first >= 1.0  # Retry-After: 1 honoured


def test_the_user_agent_names_fusionforge_and_the_contact(fetched):
    (agent,) = fetched["agents"]
    assert agent.startswith("fusionforge/") and "data-team@example.org" in agent


def test_pairs_listing_names_every_kept_image_in_listing_order(fetched):
    out = fetched["out"]
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    kept = [r for r in ledger_rows(out) if r["status"] == "kept"]
    assert [p["url"] for p in pairs] == [r["url"] for r in kept]
    assert [p["id"] for p in pairs] == sorted(p["id"] for p in pairs)
    served = {"/ok.jpg": JPEG, "/ok.png": PNG, "/untyped": PNG, "/moved.jpg": PNG, "/429.jpg": JPEG}
    for pair in pairs:
        path = path_of(pair["url"])
        image = out / pair["image"]
        assert image.suffix == (".png" if served.get(path, PNG if path == "/target.png" else JPEG) == PNG else ".jpg")
        if path in served:
            assert image.read_bytes() == served[path]
        assert pair["caption"] == f"caption of {path}"
        assert pair["license"] == "cc-by" and "listing_id" in pair  # other columns carried; 'id' is fetch's own
        assert pair["width"] > 0 and pair["height"] > 0 and len(pair["sha256"]) == 64
    files = sorted(str(p.relative_to(out)) for p in (out / "images").rglob("*") if p.is_file())
    assert files == sorted(p["image"] for p in pairs)  # no file that the listing does not name


def test_report_counts_bytes_and_throughput(fetched):
    report = fetched["report"]
    assert report["step"] == "fetch" and report["urls_this_run"] == report["inputs"]
    assert report["urls_per_s"] > 0 and report["fetch_seconds"] > 0
    files = [p for p in (fetched["out"] / "images").rglob("*") if p.is_file()]
    assert report["image_bytes"] == sum(p.stat().st_size for p in files) > 0
    assert report["retries"]["http_500"] == RETRIES and report["retries"]["timeout"] >= 2 * RETRIES
    assert report["partitions"] == -(-len(fetched["rows"]) // 4) and report["skipped_partitions"] == 0
    assert (fetched["out"] / "_SUCCESS").exists() and not (fetched["out"] / "_parts").exists()


def test_shard_reads_the_fetch_output_as_pairs(fetched, tmp_path):
    out = fetched["out"]
    result = CliRunner().invoke(
        cli, ["shard", f"web={out / 'pairs.jsonl'}", "-o", str(tmp_path / "shards"), "--executor", "local", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["inputs"] == report["kept"] == fetched["report"]["kept"]
    manifest = pq.read_table(tmp_path / "shards" / "manifest.parquet").to_pylist()
    fetch_ids = {r["id"] for r in ledger_rows(out) if r["status"] == "kept"}
    assert {m["id"] for m in manifest} == fetch_ids  # the same ids in both ledgers
    assert all(m["modality"] == "image" and m["text"].startswith("caption of ") for m in manifest)
    assert all(json.loads(m["meta"])["url"].startswith("http://127.0.0.1") for m in manifest)
