"""The killable verifier pool: a sympy hang is verifier_timeout, a crash verifier_error, and the pool lives on."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fusionforge.rft.verifier_pool import VerifierPool

HANG = "$9^{9^{9^{9}}}$"  # math-verify parses it, then sympy never finishes comparing it with 3


@pytest.fixture(scope="module")
def pool():
    with VerifierPool(workers=2, timeout_s=2.0, preload=["math_verify"]) as pool:
        yield pool


def test_a_pathological_sympy_input_times_out_within_the_bound(pool):
    before = pool.replaced
    started = time.monotonic()
    verdict = pool.verify("math", HANG, "3")
    elapsed = time.monotonic() - started
    assert verdict.status == "verifier_timeout" and "killed" in verdict.detail
    assert elapsed < 2.0 + 15  # the timeout, plus starting a replacement worker on a busy machine
    assert pool.replaced == before + 1
    assert pool.verify("math", r"\boxed{3}", "3").status == "pass"  # the replacement works


def test_a_crashing_verifier_process_is_an_error_not_a_rejection(pool):
    code = "```python\nimport os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n```"
    verdict = pool.verify("code", code, "assert True")
    assert verdict.status == "verifier_error" and "died" in verdict.detail
    assert pool.verify("count", "Answer: 3", 3).status == "pass"


def test_a_verifier_exception_is_an_error_with_its_message(pool):
    verdict = pool.verify("math", r"\boxed{3}", r"\frac{")
    assert verdict.status == "verifier_error" and "cannot be parsed" in verdict.detail


def test_many_threads_at_once_get_their_own_verdicts(pool):
    jobs = [(f"Answer: {i}", i, "pass" if i % 3 else "fail") for i in range(30)]
    with ThreadPoolExecutor(6) as threads:
        verdicts = list(
            threads.map(lambda job: pool.verify("numeric", job[0], job[1] + (0 if job[1] % 3 else 1)), jobs)
        )
    assert [v.status for v in verdicts] == [job[2] for job in jobs]
    assert [v.extracted for v in verdicts] == [str(job[1]) for job in jobs]


def test_per_call_timeout_and_a_slow_code_verifier(pool):
    slow = "```python\nimport time\ntime.sleep(30)\n```"
    verdict = pool.verify("code", slow, {"tests": "", "time_limit_s": 20}, timeout_s=1.0)
    assert verdict.status == "verifier_timeout"


def test_verify_async_from_an_event_loop(pool):
    import asyncio

    async def both():
        return await asyncio.gather(
            pool.verify_async("choice", "The answer is (B)", "B"), pool.verify_async("choice", "The answer is (B)", "C")
        )

    assert [v.status for v in asyncio.run(both())] == ["pass", "fail"]


def test_bad_pool_settings_are_refused():
    from fusionforge.pipelines.core.errors import ConfigError

    with pytest.raises(ConfigError):
        VerifierPool(workers=0)


def test_workers_that_cannot_start_give_a_clear_error_and_nobody_waits_forever():
    from fusionforge.pipelines.core.errors import RunError

    with pytest.raises(RunError, match="did not start.*fusionforge_no_such_module"):
        VerifierPool(workers=1, preload=["fusionforge_no_such_module"])
    with VerifierPool(workers=1, timeout_s=1.0) as pool:
        pool._preload = ("fusionforge_no_such_module",)  # from now on a replacement worker fails to start
        assert (
            pool.verify("code", "```python\nwhile True: pass\n```", {"tests": "", "time_limit_s": 30}).status
            == "verifier_timeout"
        )
        for _ in range(2):
            with pytest.raises(RunError, match="did not start"):
                pool.verify("count", "Answer: 1", 1)
