"""Against a real OpenAI-compatible server: ``transformers serve`` on 127.0.0.1 with a tiny random-weight model
built here (word-level tokenizer trained on the spot). It ignores ``n`` and samples only when the request's
generation config says so; the client and the loop must cope with both."""

import asyncio
import json

import pyarrow.parquet as pq
import pytest

from fusionforge.rft.clients import OpenAIClient, SampleRequest, Sampling
from fusionforge.rft.config import RFTConfig
from fusionforge.rft.local_client import TransformersClient
from fusionforge.rft.loop import run_rft
from fusionforge.rft.serve import TransformersServer, sampling_body
from fusionforge.rft.store import sample_seed
from fusionforge.rft.tiny_model import build_tiny_model

pytestmark = pytest.mark.slow  # end to end through a real server or killed processes

QUESTION = [{"role": "user", "content": "What is 2 + 3 ?"}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def server(model_dir):
    with TransformersServer(model_dir) as running:
        yield running


def _generate(client, requests):
    async def go():
        try:
            return [r async for r in client.generate(requests)]
        finally:
            await client.aclose()

    return asyncio.run(go())


def _request(sampling, k=4, prompt_id="q"):
    seeds = tuple(sample_seed(0, prompt_id, 0, i) for i in range(k))
    return SampleRequest(prompt_id, QUESTION, 0, tuple(range(k)), seeds, sampling)


def test_k_distinct_samples_come_back_although_the_server_ignores_n(server, model_dir):
    client = OpenAIClient(server.url, str(model_dir), concurrency=4)
    sampling = Sampling(temperature=1.0, max_tokens=16, extra_body=sampling_body(model_dir))
    results = _generate(client, [_request(sampling)])
    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    assert all(r.error is None and r.finish_reason in ("stop", "length") for r in results)
    assert len({r.text for r in results}) == 4
    assert client.use_n is False  # one choice came back for n=4: the rest were asked for one by one


def test_without_a_sampling_generation_config_the_server_is_greedy(server, model_dir):
    client = OpenAIClient(server.url, str(model_dir), concurrency=2, n_mode="never")
    results = _generate(client, [_request(Sampling(temperature=1.0, max_tokens=12), k=3)])
    assert len({r.text for r in results}) == 1  # temperature alone does not switch sampling on here


def test_the_loop_runs_end_to_end_with_well_formed_outputs(server, model_dir, tmp_path):
    prompts = [
        {"id": f"sum{a}{b}", "question": f"What is {a} + {b} ?", "answer": a + b, "task": "numeric"}
        for a, b in ((1, 2), (3, 4))
    ]
    prompts.append({"id": "bad", "question": "What is 1 + 1 ?", "task": "numeric"})
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    cfg = RFTConfig(
        prompts=str(path),
        output=str(tmp_path / "out"),
        k=3,
        rounds=2,
        round_k_factor=1.0,
        round_temperature_step=0.2,
        accept="all",
        verifier_workers=1,
        sampling=Sampling(temperature=1.0, max_tokens=12, extra_body=sampling_body(model_dir)),
    )
    report = run_rft(cfg, OpenAIClient(server.url, str(model_dir), concurrency=3))
    out = tmp_path / "out"
    rows = pq.read_table(out / "pass_rates.parquet").to_pylist()
    assert sorted(r["id"] for r in rows) == ["bad", "sum12", "sum34"]
    samples = pq.read_table(out / "samples.parquet").to_pylist()
    first_round = report["acceptance_by_round"][0]
    assert first_round["requests_sent"] == 6 and first_round["samples"] == 6
    assert len(samples) == report["samples"]["total"] == sum(r["samples"] for r in report["acceptance_by_round"])
    assert {s["status"] for s in samples} <= {"pass", "fail", "truncated"}
    assert all(s["finish_reason"] in ("stop", "length") and s["completion_tokens"] for s in samples)
    for row in rows:
        if row["id"] != "bad":
            assert row["n"] == row["samples"] and row["bucket"] in ("all_pass", "all_fail", "mixed")
            assert 0 <= row["pass_rate"] <= 1
    for line in (out / "sft.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert record["messages"][-1]["role"] == "assistant" and record["messages"][0]["role"] == "user"
    assert report["prompts"] == {"inputs": 3, "valid": 2, "invalid": 1, "invalid_reasons": {"missing_answer": 1}}
    assert report["tokens"]["completion"] > 0 and report["latency_s"]["p50"] > 0


def test_in_process_transformers_client_gives_distinct_repeatable_samples(model_dir):
    sampling = Sampling(temperature=1.0, max_tokens=16)
    first = _generate(TransformersClient(str(model_dir)), [_request(sampling)])
    second = _generate(TransformersClient(str(model_dir)), [_request(sampling)])
    assert [r.text for r in first] == [r.text for r in second]
    assert len({r.text for r in first}) == 4
    assert all(r.finish_reason in ("stop", "length") and 0 < r.completion_tokens <= 16 for r in first)
    image = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                {"type": "text", "text": "?"},
            ],
        }
    ]
    (refused,) = _generate(TransformersClient(str(model_dir)), [SampleRequest("img", image, 0, (0,), (1,), sampling)])
    assert refused.error_kind == "unsupported_input"
