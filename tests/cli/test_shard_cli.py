import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner
from fusionforge.cli.main import cli

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


def test_resume_after_a_kill_gives_the_same_shards(sample_corpus, tmp_path):
    inputs = [f"{name}={path}" for name, path in sample_corpus.items()]
    common = ["--executor", "local", "--partition-mb", "0.02", "--shard-count", "10"]
    clean = tmp_path / "clean"
    subprocess.run(_fusionforge("shard", *inputs, "-o", str(clean), *common), check=True, env=ENV, timeout=300,
                   capture_output=True)
    total = len(list((clean / "_markers").glob("*.done.json")))
    assert total > 4

    killed = tmp_path / "killed"
    process = subprocess.Popen(_fusionforge("shard", *inputs, "-o", str(killed), *common), env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((killed / "_markers").glob("*.done.json"))) < 2:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_at_kill = len(list((killed / "_markers").glob("*.done.json")))
    assert 2 <= done_at_kill < total, "the run must be killed part-way for this test to mean anything"
    assert not (killed / "manifest.parquet").exists()

    resumed = subprocess.run(_fusionforge("shard", *inputs, "-o", str(killed), *common, "--resume", "--json"),
                             env=ENV, timeout=300, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _snapshot(killed) == _snapshot(clean)
    assert not list(killed.rglob(".*.tmp-*"))
