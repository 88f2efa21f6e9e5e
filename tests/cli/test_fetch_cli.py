"""``fusionforge fetch`` on the command line, against a real local server: listing columns, Parquet, the
opt-out override, --strict, configuration errors (exit 2) and --resume of a finished or different run."""

from __future__ import annotations

import io
import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from fusionforge.cli.main import cli
from fusionforge.pipelines.fetch.media_server import MediaServer, Route, image_route


def jpeg(color=(9, 99, 199)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def server():
    routes = {
        "/a.jpg": image_route(jpeg()),
        "/b.jpg": image_route(jpeg((1, 2, 3))),
        "/opted-out.jpg": image_route(jpeg(), **{"X-Robots-Tag": "noai"}),
        "/busy.jpg": Route(status=429, headers={"Retry-After": "3600"}),
    }
    with MediaServer(routes) as running:
        yield running


def invoke(*args: str):
    return CliRunner().invoke(cli, ["fetch", *args])


def test_a_parquet_listing_with_its_own_column_names(server, tmp_path):
    listing = tmp_path / "laion.parquet"
    table = pa.table(
        {
            "URL": [server.url("/a.jpg"), server.url("/b.jpg")],
            "TEXT": ["a red square", None],
            "license": ["cc0", "cc-by"],
            "similarity": [0.31, 0.29],
        }
    )
    pq.write_table(table, listing)
    out = tmp_path / "out"
    result = invoke(
        f"laion={listing}",
        "-o",
        str(out),
        "--url-col",
        "URL",
        "--caption-col",
        "TEXT",
        "--extra-col",
        "license",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["kept"] == 2 and report["inputs"] == 2
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert [(p["caption"], p["license"], "similarity" in p) for p in pairs] == [
        ("a red square", "cc0", False),
        (None, "cc-by", False),
    ]
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    assert [(r["id"], r["input_position"], r["http_status"]) for r in ledger] == [
        ("laion/000000000", 0, 200),
        ("laion/000000001", 1, 200),
    ]


def test_opt_outs_are_honoured_unless_the_user_takes_it_on_himself(server, tmp_path):
    listing = tmp_path / "urls.jsonl"
    listing.write_text(json.dumps({"url": server.url("/opted-out.jpg"), "caption": "x"}) + "\n")
    honoured = invoke(str(listing), "-o", str(tmp_path / "honoured"), "--json")
    assert honoured.exit_code == 0, honoured.output
    assert json.loads(honoured.output)["reasons"] == {"fetch:opt_out_noai": 1}
    ignored = invoke(str(listing), "-o", str(tmp_path / "ignored"), "--ignore-opt-out", "--json")
    assert ignored.exit_code == 0, ignored.output
    assert json.loads(ignored.output)["kept"] == 1


def test_a_server_that_asks_for_an_hour_fails_the_url_at_once(server, tmp_path):
    listing = tmp_path / "urls.jsonl"
    listing.write_text(json.dumps({"url": server.url("/busy.jpg")}) + "\n")
    started = time.monotonic()
    result = invoke(str(listing), "-o", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 30
    (row,) = pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()
    assert row["status"] == "failed" and row["http_status"] == 429 and "3600" in row["reason"]
    assert server.count("/busy.jpg") == 1


def test_strict_stops_at_the_first_bad_row_naming_file_and_line(server, tmp_path):
    listing = tmp_path / "urls.jsonl"
    listing.write_text(json.dumps({"url": server.url("/a.jpg")}) + "\n{broken\n")
    result = invoke(str(listing), "-o", str(tmp_path / "out"), "--strict")
    assert result.exit_code == 1, result.output
    assert f"{listing}:2" in result.output and "malformed_json" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--content-type", "images"], "--content-type"),
        (["--url-col", "u", "--caption-col", "u"], "--url-col"),
        (["--concurrency", "0"], "--concurrency"),
        (["--max-bytes", "0"], "--max-bytes"),
        (["--retries", "-1"], "--retries"),
    ],
)
def test_bad_settings_are_usage_errors_before_any_request(server, tmp_path, args, named):
    listing = tmp_path / "urls.jsonl"
    listing.write_text(json.dumps({"url": server.url("/a.jpg")}) + "\n")
    result = invoke(str(listing), "-o", str(tmp_path / "out"), *args)
    assert result.exit_code == 2, result.output
    assert named in result.output and not (tmp_path / "out").exists()
    assert server.requests == []


def test_resume_of_a_finished_run_sends_nothing_and_a_different_run_is_refused(server, tmp_path):
    listing = tmp_path / "urls.jsonl"
    listing.write_text("".join(json.dumps({"url": server.url(p)}) + "\n" for p in ("/a.jpg", "/b.jpg")))
    out = str(tmp_path / "out")
    first = invoke(str(listing), "-o", out, "--json")
    assert first.exit_code == 0, first.output
    asked = len(server.requests)
    again = invoke(str(listing), "-o", out, "--resume", "--json")
    assert again.exit_code == 0 and json.loads(again.output) == json.loads(first.output)
    assert len(server.requests) == asked
    assert invoke(str(listing), "-o", out).exit_code == 2  # not empty, no --resume
    changed = invoke(str(listing), "-o", out, "--resume", "--max-bytes", "1000")
    assert changed.exit_code == 2 and "differ" in changed.output
    assert len(server.requests) == asked
