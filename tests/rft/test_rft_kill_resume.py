"""``fusionforge rft run`` killed with SIGKILL mid-run, then ``--resume``: nothing answered is sent again,
nothing is lost, and the outputs equal those of a run that was never interrupted."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from fusionforge.rft.clients import OpenAIClient, Sampling
from fusionforge.rft.config import RFTConfig
from fusionforge.rft.loop import run_rft
from fusionforge.rft.scripted_server import Call, Reply, ScriptedServer

pytestmark = pytest.mark.slow  # end to end through a real server or killed processes

PROMPTS = [{"id": f"q{i}", "question": f"How many things in box {i}?", "answer": 0, "task": "count"} for i in range(15)]
K = 4
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def respond(call: Call):
    return Reply(f"I count them all. Answer: {call.seed % 3}")


def _cli(prompts, out, url, *extra):
    return [
        sys.executable,
        "-m",
        "fusionforge.cli",
        "rft",
        "run",
        str(prompts),
        "-o",
        str(out),
        "--endpoint",
        url,
        "--model",
        "scripted",
        "-k",
        str(K),
        "--concurrency",
        "3",
        "--max-tokens",
        "64",
        "--verifier-workers",
        "1",
        "--n-mode",
        "never",
        "--accept",
        "all",
        "--json",
        *extra,
    ]


def _logged(out):
    if not (out / "results.jsonl").exists():
        return []
    records = []
    for line in (out / "results.jsonl").read_bytes().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a torn last line
            records.append(json.loads(line))
    return records


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    return path


@pytest.fixture(scope="module")
def reference(prompts_file, tmp_path_factory):
    """The same job, never interrupted (in-process, same settings as the command line)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    with ScriptedServer(respond) as server:
        client = OpenAIClient(server.url, "scripted", concurrency=3, n_mode="never")
        run_rft(
            RFTConfig(
                prompts=str(prompts_file),
                output=str(out),
                k=K,
                sampling=Sampling(max_tokens=64),
                accept="all",
                verifier_workers=1,
            ),
            client,
        )
    return out


@pytest.mark.parametrize("kill_after", [2, 30])
def test_kill_9_then_resume_loses_nothing_and_resends_nothing(prompts_file, reference, tmp_path, kill_after):
    out = tmp_path / "out"
    with ScriptedServer(respond, latency_s=0.08) as server:
        proc = subprocess.Popen(
            _cli(prompts_file, out, server.url), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while sum(r["kind"] == "sample" for r in _logged(out)) < kill_after:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        answered = {(r["prompt_id"], r["seed"]) for r in _logged(out) if r["kind"] == "sample"}
        assert kill_after <= len(answered) < len(PROMPTS) * K
        assert not (out / "_SUCCESS").exists()
        resumed_at = time.monotonic()
        result = subprocess.run(
            _cli(prompts_file, out, server.url, "--resume"), env=ENV, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
        resent = [(c["prompt"], c["seed"]) for c in server.calls if c["time"] >= resumed_at]
    question = {p["id"]: p["question"] for p in PROMPTS}
    answered_requests = {(question[pid], seed) for pid, seed in answered}
    assert answered_requests.isdisjoint(resent), "an answered request was sent again"
    assert len(resent) == len(PROMPTS) * K - len(answered)
    records = _logged(out)
    keys = [(r["prompt_id"], r["round"], r["index"], r["settings"]) for r in records if r["kind"] == "sample"]
    assert len(keys) == len(set(keys)) == len(PROMPTS) * K  # nothing lost, nothing twice
    report = json.loads(result.stdout)
    assert report["acceptance_by_round"][0]["reused_from_log"] == len(answered)
    assert (out / "sft.jsonl").read_bytes() == (reference / "sft.jsonl").read_bytes()
    assert pq.read_table(out / "pass_rates.parquet").equals(pq.read_table(reference / "pass_rates.parquet"))
    assert (out / "_SUCCESS").exists()
