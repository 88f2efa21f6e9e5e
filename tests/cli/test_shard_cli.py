import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.pipelines.core import executor_choice

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _fusionforge(*args):
    return [sys.executable, "-m", "fusionforge.cli", *args]


def _snapshot(out: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in sorted((out / "shards").glob("*.tar"))}
    files["manifest"] = json.dumps(pq.read_table(out / "manifest.parquet").to_pylist(), default=str).encode()
    files["ledger"] = json.dumps(pq.read_table(out / "ledger.parquet").to_pylist()).encode()
    return files


def test_strict_stops_at_the_first_bad_record_with_file_and_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "broken\n{"text": "never read"}\n')
    result = CliRunner().invoke(cli, ["shard", str(path), "-o", str(tmp_path / "o"), "--executor", "local", "--strict"])
    assert result.exit_code != 0
    assert f"{path}:2" in result.output and "malformed_json" in result.output


def test_json_report_on_stdout(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"}\n{"bad json\n')
    result = CliRunner().invoke(cli, ["shard", str(path), "-o", str(tmp_path / "o"), "--executor", "local", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["inputs"], report["kept"], report["failed"]) == (3, 2, 1)


def test_auto_runs_a_small_input_in_process_says_why_and_writes_the_same_bytes(sample_corpus, tmp_path):
    inputs = [f"{name}={path}" for name, path in sample_corpus.items()]
    common = ["--shard-count", "10", "--partition-mb", "0.05"]
    auto = CliRunner().invoke(cli, ["shard", *inputs, "-o", str(tmp_path / "auto"), *common])
    assert auto.exit_code == 0, auto.output
    assert "executor" in auto.output and "local (" in auto.output  # the summary's row, its reason wrapped in the cell
    report = json.loads((tmp_path / "auto" / "report.json").read_text())
    assert report["executor"]["chosen"] == "local" and report["executor"]["requested"] == "auto"
    assert f"for shard on {executor_choice.available_cpus()} CPU" in report["executor"]["reason"]
    assert yaml.safe_load((tmp_path / "auto" / "config.yaml").read_text())["executor"] == "auto"
    local = CliRunner().invoke(cli, ["shard", *inputs, "-o", str(tmp_path / "local"), *common, "--executor", "local"])
    assert local.exit_code == 0, local.output
    assert _snapshot(tmp_path / "auto") == _snapshot(tmp_path / "local")
    explicit = json.loads((tmp_path / "local" / "report.json").read_text())
    assert explicit["executor"] == {"chosen": "local", "requested": "local", "reason": "--executor local given"}
    apart = ("executor", "seconds")
    assert {k: v for k, v in report.items() if k not in apart} == {k: v for k, v in explicit.items() if k not in apart}


@pytest.mark.slow
def test_resume_after_a_kill_gives_the_same_shards(sample_corpus, tmp_path):
    inputs = [f"{name}={path}" for name, path in sample_corpus.items()]
    common = ["--executor", "local", "--partition-mb", "0.02", "--shard-count", "10"]
    clean = tmp_path / "clean"
    subprocess.run(
        _fusionforge("shard", *inputs, "-o", str(clean), *common), check=True, env=ENV, timeout=300, capture_output=True
    )
    total = len(list((clean / "_markers").glob("*.done.json")))
    assert total > 4

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _fusionforge("shard", *inputs, "-o", str(killed), *common),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((killed / "_markers").glob("*.done.json"))) < 2:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    markers = sorted((killed / "_markers").glob("*.done.json"))
    done_at_kill = len(markers)
    assert 2 <= done_at_kill < total, "the run must be killed part-way for this test to mean anything"
    assert not (killed / "manifest.parquet").exists()
    finished = [killed / "shards" / name for m in markers for name in json.loads(m.read_text())["shards"]]
    stamps = {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in finished}
    assert len(stamps) >= done_at_kill

    resumed = subprocess.run(
        _fusionforge("shard", *inputs, "-o", str(killed), *common, "--resume", "--json"),
        env=ENV,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert _snapshot(killed) == _snapshot(clean)
    assert not list(killed.rglob(".*.tmp-*"))
    # the partitions finished before the kill were skipped, not written again
    assert json.loads(resumed.stdout)["skipped_partitions"] == done_at_kill
    assert all((path.stat().st_ino, path.stat().st_mtime_ns) == stamps[path] for path in stamps)


def _strict_shard(tmp_path, listing):
    out = tmp_path / "o"
    return CliRunner().invoke(
        cli, ["shard", f"p={listing}", "-o", str(out), "--executor", "local", "--strict", "--format", "pairs"]
    )


def _good_png(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (32, 24), (200, 40, 40)).save(path)


def test_strict_names_listing_line_and_path_of_a_missing_image(tmp_path):
    _good_png(tmp_path / "ok.png")
    listing = tmp_path / "pairs.jsonl"
    listing.write_text('{"image": "ok.png", "caption": "red"}\n{"image": "gone.jpg", "caption": "lost"}\n')
    result = _strict_shard(tmp_path, listing)
    assert result.exit_code != 0
    assert f"Error: {listing}:2: missing_file: {tmp_path / 'gone.jpg'}" in result.output


def test_strict_names_listing_line_and_path_of_an_undecodable_image(tmp_path):
    _good_png(tmp_path / "ok.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    listing = tmp_path / "pairs.jsonl"
    listing.write_text('{"image": "ok.png", "caption": "red"}\n{"image": "bad.jpg", "caption": "broken"}\n')
    result = _strict_shard(tmp_path, listing)
    assert result.exit_code != 0
    expected = f"Error: {listing}:2: {tmp_path / 'bad.jpg'}: undecodable_image: not a recognised image format"
    assert expected in result.output
    assert result.output.count("undecodable_image") == 1


def test_strict_names_listing_line_and_path_of_a_truncated_video(tmp_path):
    from fusionforge.pipelines.demo_corpus import make_video

    make_video(tmp_path / "cut.mp4", "testsrc", seconds=3.0, faststart=True)
    data = (tmp_path / "cut.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])  # the header survives, frames do not
    _good_png(tmp_path / "ok.png")
    listing = tmp_path / "pairs.jsonl"
    listing.write_text('{"image": "ok.png", "caption": "red"}\n{"video": "cut.mp4", "caption": "cut short"}\n')
    result = _strict_shard(tmp_path, listing)
    assert result.exit_code != 0
    assert f"Error: {listing}:2: {tmp_path / 'cut.mp4'}: corrupt_video: " in result.output
    assert result.output.count("corrupt_video") == 1


def test_max_record_mb_fails_larger_records_with_a_reason(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"text": "small"}) + "\n" + json.dumps({"text": "x" * 1_500_000}) + "\n")
    out = tmp_path / "o"
    args = ["shard", str(path), "-o", str(out), "--executor", "local", "--json", "--max-record-mb", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["kept"], report["failed"]) == (1, 1) and "read:record_too_large" in report["reasons"]
    config = (out / "config.yaml").read_text()
    assert "max_record_mb: 1.0" in config


def test_strict_stops_at_the_first_damaged_file_and_names_it(tmp_path):
    import gzip

    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"text": "fine"}\n' * 5000)[:-30])
    args = ["shard", str(path), "-o", str(tmp_path / "o"), "--executor", "local", "--strict"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert f"{path}:-1: unreadable_file: the gzip stream ends inside a compressed member" in result.output
