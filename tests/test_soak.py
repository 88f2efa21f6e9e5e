"""``bench/soak.py`` at a tiny size: the whole recipe, the ledger invariant, a kill and a resume that match.

The million-record figures are in bench/README.md; this keeps the soak's own checks honest: they pass on
real outputs and fail when a file or a ledger row is changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def soaked(tmp_path_factory):
    work = tmp_path_factory.mktemp("soak")
    summary = work / "soak.json"
    command = [sys.executable, str(BENCH / "soak.py"), "--records", "2000", "--seed", "3", "--work", str(work)]
    result = subprocess.run(
        [*command, "--keep", "--json-out", str(summary)], capture_output=True, text=True, timeout=900, env=os.environ
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work, json.loads(summary.read_text()), result.stdout


@pytest.mark.slow
def test_the_soak_runs_every_step_kills_resumes_and_matches(soaked):
    _, summary, printed = soaked
    steps = [s["step"] for s in summary["first"]["steps"]]
    assert steps == ["shard", "dedupe", "filter", "pack", "audit"]
    assert all(s["wall_s"] > 0 and s["peak_mb"] > 50 for s in summary["first"]["steps"])
    shard = summary["first"]["steps"][0]
    assert shard["records_in"] == summary["records"] == 2000
    faults = summary["faults"]
    unreadable = ("malformed_json", "missing_text", "undecodable_image", "missing_file", "truncated_video")
    assert summary["ledger"]["shard"]["failed"] == sum(faults.get(name, 0) for name in unreadable)
    assert summary["ledger"]["dedupe"]["dropped"] >= faults["text_exact_copy"]  # near copies may differ too much
    assert summary["ledger"]["filter"]["dropped"] >= faults["small_image"]
    kill = summary["kill"]
    assert kill["step"] in {"shard", "dedupe", "filter", "pack"} and 0 <= kill["after_units"] < kill["units"]
    assert summary["differ"] == [] and summary["files_compared"] > 50
    assert "0 differ" in printed


@pytest.mark.slow
def test_the_soaks_checks_catch_a_changed_file_and_a_lost_ledger_row(soaked):
    work, summary, _ = soaked
    sys.path.insert(0, str(BENCH))
    from soak import check_ledgers, compare_outputs

    first, second = work / "out-1", work / "out"
    shard = next((second / "filter" / "shards").glob("*.tar"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert compare_outputs(first, second) == [str(shard.relative_to(second))]

    ledger = second / "dedupe" / "ledger.parquet"
    table = pq.read_table(ledger)
    pq.write_table(table.slice(1), ledger)
    with pytest.raises(AssertionError, match="dedupe"):
        check_ledgers(second, summary["records"])
    check_ledgers(first, summary["records"])  # the untouched output still holds


@pytest.mark.slow
def test_the_comparison_leaves_out_the_executor_only_when_reusing_a_run(soaked, tmp_path):
    work, _, _ = soaked
    sys.path.insert(0, str(BENCH))
    from soak import WRITERS, _executors, compare_outputs

    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        for step in WRITERS:
            (out / step).mkdir(parents=True)
            for name in ("report.json", "config.yaml"):
                (out / step / name).write_bytes((work / "out-1" / step / name).read_bytes())
    config = (second / "dedupe" / "config.yaml").read_text()
    assert "\nexecutor: " in config
    (second / "dedupe" / "config.yaml").write_text(config.replace("\nexecutor: ", "\nexecutor: other-"))
    report = json.loads((second / "dedupe" / "report.json").read_text())
    before = report["executor"]["chosen"]
    report["executor"]["chosen"] = "ray" if before == "local" else "local"
    (second / "dedupe" / "report.json").write_text(json.dumps(report))

    assert compare_outputs(first, second) == ["dedupe/config.yaml", "dedupe/report.json"]
    assert compare_outputs(first, second, ("executor",)) == []
    assert _executors(first, second)["dedupe"] == f"{before} -> {report['executor']['chosen']}"
    report["kept"] = -1  # any other field still counts
    (second / "dedupe" / "report.json").write_text(json.dumps(report))
    assert compare_outputs(first, second, ("executor",)) == ["dedupe/report.json"]


def test_reuse_first_refuses_a_work_folder_without_a_finished_run(tmp_path):
    command = [sys.executable, str(BENCH / "soak.py"), "--records", "200", "--work", str(tmp_path), "--reuse-first"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ)
    assert result.returncode != 0
    assert "--reuse-first: no finished uninterrupted run" in result.stderr
    assert (tmp_path / "corpus" / "planted.json").exists()  # the work folder is kept under --reuse-first
    assert not any((tmp_path / name).exists() for name in ("run-1.log", "run-2.log", "out"))  # nothing was run
