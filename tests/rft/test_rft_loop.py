"""The loop end to end against a scripted server: acceptance, pass@k, buckets, rounds, retries, timeouts, resume."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import build_config
from fusionforge.rft.clients import OpenAIClient, Sampling
from fusionforge.rft.config import RFTConfig
from fusionforge.rft.loop import run_rft
from fusionforge.rft.scripted_server import Call, Fault, Reply, ScriptedServer
from fusionforge.rft.store import sample_seed

LONG = (
    "Paris is the capital of France and its largest city, standing on the river Seine in the north of the "
    "country. It has been the seat of government for most of the last thousand years, and it is known for "
    "its museums, its {} and its long history of art, science and politics, which drew writers, painters "
    "and scientists from every part of Europe and beyond for many centuries. Answer: Paris"
)
HANG = "$9^{9^{9^{9}}}$"
PROMPTS = [
    {"id": "add", "question": "What is 2 + 2?", "answer": "4", "task": "math"},
    {"id": "cap", "question": "Capital of France?", "answer": "Paris", "task": "exact"},
    {"id": "hard", "question": "Hard sum?", "answer": 7, "task": "numeric"},
    {"id": "flaky", "question": "How many?", "answer": 3, "task": "count"},
    {"id": "slowverify", "question": "Tower?", "answer": "2", "task": "math"},
    {"id": "noanswer", "question": "Missing answer", "task": "math"},
]
SCRIPT = {  # (prompt id, round, sample index) -> outcome per attempt
    ("add", 0, 0): [Reply(r"\boxed{5}")],
    ("add", 0, 1): [Fault("status", 500), Reply(r"The answer is \boxed{4}.")],
    ("add", 0, 2): [Reply(r"The answer is \boxed{4}.")],
    ("add", 0, 3): [Reply(r"Let me think about \boxed{4}", finish_reason="length")],
    ("cap", 0, 0): [Reply(LONG.format("cafes"))],
    ("cap", 0, 1): [Reply(LONG.format("bistros"))],
    ("cap", 0, 2): [Reply("Answer: Paris")],
    ("cap", 0, 3): [Reply("answer:   PARIS")],
    ("hard", 1, 5): [Reply(r"\boxed{7}")],
    ("flaky", 0, 0): [Fault("status", 500)],
    ("flaky", 0, 1): [Reply("slow", delay_s=3.0), Reply("Answer: 3")],
    ("flaky", 0, 2): [Fault("drop"), Reply("Answer: 2")],
    ("flaky", 0, 3): [Reply("Answer: 3")],
    ("slowverify", 0, 0): [Reply(HANG)],
}
DEFAULTS = {
    "add": r"\boxed{1}",
    "cap": "Answer: Rome",
    "hard": r"\boxed{3}",
    "flaky": "Answer: 9",
    "slowverify": r"\boxed{1}",
}


def _responder():
    by_seed = {}
    for prompt in PROMPTS[:5]:
        for round_index in (0, 1):
            for index in range(8):
                key = (prompt["question"], sample_seed(0, prompt["id"], round_index, index))
                by_seed[key] = SCRIPT.get((prompt["id"], round_index, index), [Reply(DEFAULTS[prompt["id"]])])

    def respond(call: Call):
        outcomes = by_seed[(call.prompt, call.seed)]
        return outcomes[min(call.attempt, len(outcomes) - 1)]

    return respond


def _config(tmp_path, prompts=PROMPTS, **changes):
    path = tmp_path / "prompts.jsonl"
    if not path.exists():
        path.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    settings = dict(
        prompts=str(path),
        output=str(tmp_path / "out"),
        k=4,
        rounds=2,
        round_k_factor=2.0,
        round_temperature_step=0.5,
        sampling=Sampling(temperature=0.6, max_tokens=64),
        accept="all",
        verifier_timeout_s=2.0,
        verifier_workers=2,
    )
    return build_config(RFTConfig, {**settings, **changes})


def _client(server):
    return OpenAIClient(
        server.url, "scripted", concurrency=4, timeout_s=0.5, max_retries=2, backoff_base_s=0.01, n_mode="never"
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("rft")
    with ScriptedServer(_responder()) as server:
        report = run_rft(_config(tmp_path), _client(server))
        calls = list(server.calls)
    return tmp_path, report, calls


def _rows(path):
    return {row["id"]: row for row in pq.read_table(path).to_pylist()}


def test_acceptance_pass_rates_and_buckets_are_exact(finished):
    tmp_path, report, _ = finished
    rows = _rows(tmp_path / "out" / "pass_rates.parquet")
    expected = {  # n, passed, pass@1, pass@4, bucket, accepted, solved round
        "add": (4, 2, 0.5, 1.0, "mixed", 1, 0),
        "cap": (4, 4, 1.0, 1.0, "all_pass", 2, 0),
        "hard": (12, 1, 0.0, 0.0, "mixed", 1, 1),
        "flaky": (3, 2, 2 / 3, None, "mixed", 1, 0),
        "slowverify": (11, 0, 0.0, None, "all_fail", 0, None),
    }
    for prompt_id, (n, passed, p1, pk, bucket, accepted, solved) in expected.items():
        row = rows[prompt_id]
        got = (
            row["n"],
            row["passed"],
            row["pass_at_1"],
            row["pass_at_k"],
            row["bucket"],
            row["accepted"],
            row["solved_round"],
        )
        assert got == pytest.approx((n, passed, p1, pk, bucket, accepted, solved)), prompt_id
    assert (rows["add"]["truncated"], rows["flaky"]["gen_errors"], rows["slowverify"]["verifier_timeouts"]) == (1, 1, 1)
    assert rows["noanswer"]["bucket"] == "invalid" and "missing_answer" in rows["noanswer"]["error"]
    assert report["buckets"] == {"all_fail": 1, "all_pass": 1, "invalid": 1, "mixed": 3}
    assert report["pass_at_1"] == pytest.approx((0.5 + 1 + 0 + 2 / 3 + 0) / 5, abs=1e-6)
    assert report["pass_at_k"] == pytest.approx(2 / 3, abs=1e-6) and report["prompts_with_pass_at_k"] == 3
    assert report["samples"]["by_status"] == {
        "fail": 24,
        "gen_error": 1,
        "pass": 9,
        "truncated": 1,
        "verifier_timeout": 1,
    }
    assert report["solved"] == 4 and report["accepted_samples"] == 5 and report["rl_pool"] == 3


def test_dedup_and_retries_and_errors_are_counted(finished):
    tmp_path, report, _ = finished
    assert report["duplicates"] == {"exact": 3, "near": 1}
    assert report["errors"]["retries"] == {"connection": 1, "http_500": 3, "timeout": 1}
    assert report["errors"]["generation"] == {"http_500": 1}
    assert report["errors"]["verifier"] == {"verifier_error": 0, "verifier_timeout": 1}
    samples = pq.read_table(tmp_path / "out" / "samples.parquet").to_pylist()
    fate = {(s["prompt_id"], s["round"], s["index"]): (s["status"], s["selection"]) for s in samples}
    assert fate[("add", 0, 1)] == ("pass", "accepted") and fate[("add", 0, 2)] == ("pass", "duplicate_exact")
    assert fate[("add", 0, 3)] == ("truncated", None)
    assert fate[("cap", 0, 1)] == ("pass", "duplicate_near") and fate[("cap", 0, 3)] == ("pass", "duplicate_exact")
    assert fate[("flaky", 0, 0)] == ("gen_error", None)
    assert fate[("slowverify", 0, 0)] == ("verifier_timeout", None)
    assert len(samples) == 36


def test_rounds_escalate_and_solved_prompts_are_not_sent_again(finished):
    _, report, calls = finished
    rounds = report["acceptance_by_round"]
    assert [(r["round"], r["k"], r["temperature"], r["prompts"], r["requests_sent"]) for r in rounds] == [
        (0, 4, 0.6, 5, 20),
        (1, 8, 1.1, 2, 16),
    ]
    assert [r["newly_solved"] for r in rounds] == [3, 1]
    round1_seeds = {sample_seed(0, pid, 1, i) for pid in ("hard", "slowverify") for i in range(8)}
    assert {c["seed"] for c in calls} >= round1_seeds
    assert not any(
        c["prompt"] in ("What is 2 + 2?", "Capital of France?", "How many?")
        and c["seed"] in {sample_seed(0, p, 1, i) for p in ("add", "cap", "flaky") for i in range(8)}
        for c in calls
    )
    assert len(calls) == 25 + 16  # 20 samples + 5 retries in round 0, 16 in round 1


def test_outputs_are_well_formed(finished):
    tmp_path, report, _ = finished
    out = tmp_path / "out"
    sft = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert sorted(s["id"] for s in sft) == ["add#r0s1", "cap#r0s0", "cap#r0s2", "flaky#r0s1", "hard#r1s5"]
    hard = next(s for s in sft if s["prompt_id"] == "hard")
    assert hard["messages"] == [
        {"role": "user", "content": "Hard sum?"},
        {"role": "assistant", "content": r"\boxed{7}"},
    ]
    assert hard["temperature"] == 1.1 and hard["extracted"] == "7"
    pool = [json.loads(line) for line in (out / "rl_pool.jsonl").read_text().splitlines()]
    assert [p["id"] for p in pool] == ["add", "hard", "flaky"]
    assert pool[0]["answer"] == "4" and pool[0]["pass_rate"] == 0.5
    saved = json.loads((out / "report.json").read_text())
    assert saved["acceptance_by_task"]["math"] == {
        "prompts": 2,
        "solved": 1,
        "accepted_samples": 1,
        "samples_counted": 15,
        "passed": 2,
        "pass_rate": round(2 / 15, 6),
    }
    assert saved["tokens"]["completion"] > 0 and set(saved["latency_s"]) == {"p50", "p90", "p99", "mean", "max"}
    assert (out / "_SUCCESS").exists() and (out / "config.yaml").exists()
    log = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    sample_keys = [(r["prompt_id"], r["round"], r["index"], r["settings"]) for r in log if r["kind"] == "sample"]
    assert len(sample_keys) == len(set(sample_keys)) == 36


def test_resume_of_a_finished_run_resends_only_the_failed_request(finished, tmp_path):
    source, report, _ = finished
    import shutil

    shutil.copytree(source / "out", tmp_path / "out")
    shutil.copy(source / "prompts.jsonl", tmp_path / "prompts.jsonl")
    with ScriptedServer(_responder()) as server:
        again = run_rft(_config(tmp_path, resume=True), _client(server))
        calls = list(server.calls)
    # every answered request is reused; the one that failed after all retries is tried again (and fails again)
    assert {(c["prompt"], c["seed"]) for c in calls} == {("How many?", sample_seed(0, "flaky", 0, 0))}
    assert len(calls) == 3
    out = tmp_path / "out"
    assert (out / "sft.jsonl").read_bytes() == (source / "out" / "sft.jsonl").read_bytes()
    assert _rows(out / "pass_rates.parquet") == _rows(source / "out" / "pass_rates.parquet")
    assert [r["requests_sent"] for r in again["acceptance_by_round"]] == [1, 0]
    assert [r["reused_from_log"] for r in again["acceptance_by_round"]] == [19, 16]
    assert again["samples"] == report["samples"]  # the verifier timeout was tried again, and timed out again


@pytest.mark.slow
def test_more_samples_on_resume_sends_only_the_new_indices(tmp_path):
    quick = [p for p in PROMPTS if p["id"] in ("add", "cap", "flaky")]
    with ScriptedServer(_responder()) as server:
        run_rft(_config(tmp_path, quick, k=2, rounds=1), _client(server))
        first = len(server.calls)
        run_rft(_config(tmp_path, quick, k=3, rounds=1, resume=True), _client(server))
        later = server.calls[first:]
    new_index = {sample_seed(0, p["id"], 0, 2) for p in quick}
    failed_before = {sample_seed(0, "flaky", 0, 0)}  # a request that failed is tried again
    assert {c["seed"] for c in later} == new_index | failed_before


def test_an_output_folder_is_never_overwritten_or_mixed(tmp_path):
    with ScriptedServer(_responder()) as server:
        run_rft(_config(tmp_path, PROMPTS[:2], k=1, rounds=1), _client(server))
        with pytest.raises(ConfigError, match="not empty"):
            run_rft(_config(tmp_path, k=1, rounds=1), _client(server))
        Path(tmp_path / "prompts.jsonl").write_text(json.dumps(PROMPTS[0]) + "\n")
        with pytest.raises(ConfigError, match="differ"):
            run_rft(_config(tmp_path, k=1, rounds=1, resume=True), _client(server))


def test_impossible_settings_fail_before_any_request(tmp_path):
    with pytest.raises(ConfigError, match="round_k_factor"):
        _config(tmp_path, round_k_factor=0.5)
    with pytest.raises(ConfigError, match="accept"):
        _config(tmp_path, accept="best")


def test_an_image_prompt_goes_out_as_a_data_url_and_comes_back_as_a_file_reference(tmp_path):
    import base64

    from PIL import Image

    Image.new("RGB", (200, 100), "blue").save(tmp_path / "blue.png")
    row = {
        "id": "box",
        "question": "Where is the blue thing?",
        "images": ["blue.png"],
        "answer": [20, 10, 100, 50],
        "task": "bbox",
        "verify": {"response_convention": "norm1000"},
    }
    seen = []

    def respond(call: Call):
        seen.append(call.body["messages"][0]["content"])
        return Reply("<answer>[100, 100, 500, 500]</answer>")  # 0-1000 grid: (20, 10, 100, 50) in a 200x100 image

    with ScriptedServer(respond) as server:
        report = run_rft(_config(tmp_path, [row], k=1, rounds=1), _client(server))
    image_part, text_part = seen[0]
    data = base64.b64decode(image_part["image_url"]["url"].removeprefix("data:image/png;base64,"))
    assert data == (tmp_path / "blue.png").read_bytes() and text_part["text"] == "Where is the blue thing?"
    assert report["accepted_samples"] == 1
    (line,) = (tmp_path / "out" / "sft.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["messages"][0]["content"][0]["image_url"]["url"] == (tmp_path / "blue.png").as_uri()
    assert record["images"] == [str(tmp_path / "blue.png")]
