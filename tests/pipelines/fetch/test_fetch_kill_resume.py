"""``fusionforge fetch`` killed with SIGKILL mid-run, then ``--resume``: the server never sees a request for a
URL the killed run had decided, every URL ends in the ledger once, and the outputs equal an uninterrupted run's."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from PIL import Image

from fusionforge.pipelines.fetch.config import FetchConfig
from fusionforge.pipelines.fetch.journal import JOURNAL_DIR, read_journal
from fusionforge.pipelines.fetch.media_server import MediaServer, Route
from fusionforge.pipelines.fetch.parts import PARTS_DIR
from fusionforge.pipelines.fetch.run import run_fetch

pytestmark = pytest.mark.slow  # killed processes and a real server

URLS = 120
PARTITION = 16
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def image(i: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24 + i % 5, 16), (i % 256, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def routes() -> dict[str, Route]:
    """Images answered after 40 ms, and every seventh path a 404 (a decision, so never to be asked again)."""
    found = {}
    for i in range(URLS):
        if i % 7 == 3:
            found[f"/{i}.png"] = Route(status=404, delay_s=0.04)
        else:
            found[f"/{i}.png"] = Route(body=image(i), headers={"Content-Type": "image/png"}, delay_s=0.04)
    return found


def write_listing(folder, server) -> str:
    listing = folder / "urls.jsonl"
    listing.write_text(
        "".join(json.dumps({"url": server.url(f"/{i}.png"), "caption": f"n{i}"}) + "\n" for i in range(URLS))
    )
    return str(listing)


def decided_urls(out) -> set[str]:
    """What the killed run had decided: the ledger parts of finished partitions and the journals of the rest."""
    urls = set()
    for part in (out / PARTS_DIR).glob("ledger-*.parquet") if (out / PARTS_DIR).exists() else []:
        urls |= set(pq.read_table(part, columns=["url"]).column(0).to_pylist())
    for journal in (out / JOURNAL_DIR).glob("*.jsonl") if (out / JOURNAL_DIR).exists() else []:
        urls |= {entry["url"] for entry in read_journal(journal).values()}
    return urls


def cli(listing: str, out, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fusionforge.cli",
        "fetch",
        listing,
        "-o",
        str(out),
        "--concurrency",
        "4",
        "--per-host",
        "4",
        "--partition-size",
        str(PARTITION),
        "--json",
        *extra,
    ]


@pytest.mark.parametrize("kill_after", [3, 70])
def test_kill_9_then_resume_asks_no_decided_url_again_and_loses_nothing(tmp_path, kill_after):
    out = tmp_path / "out"
    with MediaServer(routes()) as server:
        listing = write_listing(tmp_path, server)
        reference = run_fetch(
            FetchConfig(
                listings=(listing,), output=str(tmp_path / "reference"), concurrency=4, partition_size=PARTITION
            )
        )
        server.requests.clear()
        server.times.clear()
        proc = subprocess.Popen(cli(listing, out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while len(server.requests) < kill_after:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(0.3)  # a request the killed run had written is read by the server now, not during the resume
        before = len(server.requests)
        decided = decided_urls(out)
        finished = len(list((out / "_markers").glob("*.done.json")))
        assert not (out / "_SUCCESS").exists() and len(decided) < URLS
        result = subprocess.run(cli(listing, out, "--resume"), env=ENV, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        resent = [server.url(p) for p in server.requests[before:]]
    assert decided.isdisjoint(resent), "a decided URL was asked for again"
    assert len(resent) == len(set(resent)) == URLS - len(decided)  # each undecided URL exactly once
    ledger = pq.read_table(out / "ledger.parquet")
    assert ledger.num_rows == URLS and len(set(ledger.column("id").to_pylist())) == URLS
    assert ledger.equals(pq.read_table(tmp_path / "reference" / "ledger.parquet"))
    assert (out / "pairs.jsonl").read_bytes() == (tmp_path / "reference" / "pairs.jsonl").read_bytes()
    kept = reference["kept"]
    assert sorted(p.name for p in (out / "images").rglob("*.png")) == sorted(
        p.name for p in (tmp_path / "reference" / "images").rglob("*.png")
    )
    assert sum(p.is_file() for p in (out / "images").rglob("*")) == kept  # nothing left over from the killed run
    report = json.loads(result.stdout)
    assert report["inputs"] == URLS and report["kept"] == kept
    assert report["urls_this_run"] == URLS - len(decided)
    assert report["skipped_partitions"] == finished and report["partitions"] == URLS // PARTITION + 1
