"""The OpenAI-compatible client against a scripted server: retries, backoff, timeouts, drops, n, concurrency."""

import asyncio
import time

import pytest

from fusionforge.rft.clients import OpenAIClient, SampleRequest, Sampling
from fusionforge.rft.scripted_server import Call, Fault, Reply, ScriptedServer, table_responder

PROMPT = "What is 6 * 7?"


def _request(indices=(0,), seeds=(11,), prompt=PROMPT, **sampling):
    return SampleRequest(
        "q1",
        [{"role": "user", "content": prompt}],
        0,
        tuple(indices),
        tuple(seeds),
        Sampling(**{"max_tokens": 32, **sampling}),
    )


def _run(client, requests):
    async def go():
        try:
            return [r async for r in client.generate(requests)]
        finally:
            await client.aclose()

    return asyncio.run(go())


def _client(server, **options):
    return OpenAIClient(server.url, "scripted", **{"timeout_s": 2.0, "backoff_base_s": 0.01, **options})


def test_retries_500_then_succeeds_with_exact_attempts():
    table = {(PROMPT, 11): [Fault("status", 500), Fault("status", 503), Reply("\\boxed{42}")]}
    with ScriptedServer(table_responder(table)) as server:
        (result,) = _run(_client(server), [_request()])
    assert result.text == "\\boxed{42}" and result.error is None
    assert result.attempts == 3 and result.retries == {"http_500": 1, "http_503": 1}
    assert [c["attempt"] for c in server.calls] == [0, 1, 2]


def test_gives_up_after_max_retries_and_records_the_kind():
    table = {(PROMPT, 11): [Fault("status", 500)]}
    with ScriptedServer(table_responder(table)) as server:
        (result,) = _run(_client(server, max_retries=2), [_request()])
    assert result.text is None and result.error_kind == "http_500" and result.error.startswith("http_500:")
    assert result.attempts == 3 and result.retries == {"http_500": 2}
    assert len(server.calls) == 3


def test_client_errors_are_not_retried():
    table = {(PROMPT, 11): [Fault("status", 404)]}
    with ScriptedServer(table_responder(table)) as server:
        (result,) = _run(_client(server), [_request()])
    assert result.error_kind == "http_404" and result.attempts == 1 and len(server.calls) == 1


def test_delay_past_the_timeout_is_retried_and_then_answered():
    table = {(PROMPT, 11): [Reply("late", delay_s=3.0), Reply("\\boxed{42}")]}
    with ScriptedServer(table_responder(table)) as server:
        started = time.monotonic()
        (result,) = _run(_client(server, timeout_s=0.5), [_request()])
        elapsed = time.monotonic() - started
    assert result.text == "\\boxed{42}" and result.retries == {"timeout": 1} and result.attempts == 2
    assert elapsed < 2.5  # the first attempt was abandoned at 0.5 s, not awaited for 3 s


def test_dropped_connection_and_malformed_body_are_retried():
    table = {(PROMPT, 11): [Fault("drop"), Fault("malformed"), Reply("ok")]}
    with ScriptedServer(table_responder(table)) as server:
        (result,) = _run(_client(server), [_request()])
    assert result.text == "ok" and result.retries == {"connection": 1, "bad_response": 1}


def test_429_waits_at_least_retry_after():
    table = {(PROMPT, 11): [Fault("status", 429, retry_after=0.6), Reply("ok")]}
    with ScriptedServer(table_responder(table)) as server:
        (result,) = _run(_client(server), [_request()])
        gap = server.calls[1]["time"] - server.calls[0]["time"]
    assert result.text == "ok" and result.retries == {"http_429": 1}
    assert gap >= 0.6


def test_backoff_grows_exponentially_with_bounded_jitter():
    client = OpenAIClient("http://127.0.0.1:9/v1", "m", backoff_base_s=1.0, backoff_max_s=8.0)
    for attempt, step in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 8.0)):
        delays = [client.backoff_s(attempt) for _ in range(200)]
        assert step / 2 <= min(delays) and max(delays) <= step
        assert max(delays) - min(delays) > step / 4  # jittered, not constant
    asyncio.run(client.aclose())


def test_sampling_settings_and_seed_pass_through():
    seen = []

    def respond(call: Call):
        seen.append(dict(call.body))
        return Reply("x")

    with ScriptedServer(respond) as server:
        _run(_client(server), [_request(temperature=0.7, top_p=0.9, stop=("END",), extra_body={"top_k": 5})])
    body = seen[0]
    assert (body["temperature"], body["top_p"], body["stop"], body["top_k"], body["seed"]) == (0.7, 0.9, ["END"], 5, 11)
    assert body["max_tokens"] == 32 and "n" not in body


def test_n_is_used_when_the_server_honours_it():
    with ScriptedServer(lambda call: Reply(f"choice {call.choice}"), n_support="honour") as server:
        results = _run(_client(server), [_request(indices=(0, 1, 2, 3), seeds=(5, 6, 7, 8))])
    assert len(server.calls) == 1 and server.calls[0]["n"] == 4
    assert sorted((r.index, r.text) for r in results) == [(i, f"choice {i}") for i in range(4)]


def test_a_server_that_ignores_n_gets_one_request_per_remaining_sample_with_its_seed():
    with ScriptedServer(lambda call: Reply(f"seed {call.seed}"), n_support="ignore") as server:
        results = _run(
            _client(server),
            [_request(indices=(0, 1, 2), seeds=(5, 6, 7)), _request(indices=(0, 1), seeds=(8, 9), prompt="other")],
        )
    assert {r.seed: r.text for r in results} == {5: "seed 5", 6: "seed 6", 7: "seed 7", 8: "seed 8", 9: "seed 9"}
    assert {(r.prompt_id, r.index) for r in results} == {("q1", i) for i in range(3)} | {("q1", i) for i in range(2)}
    # both groups went out with n before any answer; each got one choice back, the rest went one by one
    assert sorted(c["n"] for c in server.calls) == [1, 1, 1, 2, 3]


def test_a_server_that_rejects_n_is_asked_per_sample():
    with ScriptedServer(lambda call: Reply(f"seed {call.seed}"), n_support="reject") as server:
        results = _run(_client(server), [_request(indices=(0, 1, 2), seeds=(5, 6, 7))])
    assert sorted(r.text for r in results) == ["seed 5", "seed 6", "seed 7"]
    assert [c["n"] for c in server.calls] == [3, 1, 1, 1]
    assert all(r.error is None for r in results)


def test_never_mode_sends_single_requests_only():
    with ScriptedServer(lambda call: Reply("x"), n_support="honour") as server:
        _run(_client(server, n_mode="never"), [_request(indices=(0, 1, 2), seeds=(5, 6, 7))])
    assert [c["n"] for c in server.calls] == [1, 1, 1]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_concurrency_is_bounded(concurrency):
    with ScriptedServer(lambda call: Reply("x"), latency_s=0.1) as server:
        requests = [_request(seeds=(s,), prompt=f"p{s}") for s in range(12)]
        started = time.monotonic()
        results = _run(_client(server, concurrency=concurrency), requests)
        elapsed = time.monotonic() - started
        starts = sorted(c["time"] for c in server.calls)
    assert len(results) == 12
    # at most `concurrency` requests may start within one latency window
    most_in_window = max(sum(1 for t in starts if s <= t < s + 0.09) for s in starts)
    assert most_in_window <= concurrency
    assert elapsed >= 12 / concurrency * 0.1 * 0.9


def test_requests_are_consumed_lazily():
    produced = []

    def requests():
        for s in range(20):
            produced.append(s)
            yield _request(seeds=(s,), prompt=f"p{s}")

    async def go(server):
        client = _client(server, concurrency=2)
        got = 0
        async for _ in client.generate(requests()):
            got += 1
            if got == 1:
                first_seen = len(produced)
        await client.aclose()
        return first_seen

    with ScriptedServer(lambda call: Reply("x"), latency_s=0.05) as server:
        first_seen = asyncio.run(go(server))
    assert first_seen <= 4  # not the whole list up front
