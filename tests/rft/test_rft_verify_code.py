"""The code verifier's sandbox: passing and failing tests, stdin/stdout cases, hangs, limits."""

import sys
import time
from pathlib import Path

from fusionforge.pipelines.core.sandbox import sandbox_mode
from fusionforge.rft.verifiers import run_verifier
from fusionforge.rft.verify_code import CodeSandbox, run_sandboxed

ADD = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\n"


def test_passing_and_failing_asserts():
    assert run_verifier("code", ADD, "assert add(1, 2) == 3\nassert add(-1, 1) == 0").status == "pass"
    verdict = run_verifier("code", ADD.replace("a + b", "a - b"), "assert add(1, 2) == 3")
    assert verdict.status == "fail" and "AssertionError" in verdict.detail


def test_stdin_stdout_cases():
    code = "```python\nimport sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n```"
    cases = {"cases": [{"input": "1 2", "output": "3"}, {"input": "5 5 5", "output": "15\n"}]}
    assert run_verifier("code", code, cases).status == "pass"
    verdict = run_verifier("code", code, {"cases": [{"input": "1 2", "output": "4"}]})
    assert verdict.status == "fail" and "case 1: wrong output" in verdict.detail


def test_code_that_hangs_fails_at_its_time_limit_and_leaves_nothing_running():
    started = time.monotonic()
    verdict = run_verifier(
        "code",
        "```python\nimport time\nwhile True:\n    time.sleep(0.01)\n```",
        {"tests": ""},
        {"sandbox": {"time_limit_s": 1}},
    )
    assert verdict.status == "fail" and "time limit exceeded" in verdict.detail
    assert time.monotonic() - started < 5


def test_children_of_the_candidate_are_killed_with_it(tmp_path):
    marker = tmp_path / "survivor"
    child = f"import time, pathlib; time.sleep(2); pathlib.Path({str(marker)!r}).write_text('x')"
    source = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {child!r}])\ntime.sleep(60)\n"
    result = run_sandboxed(source, settings=CodeSandbox(time_limit_s=0.5))
    assert result.timed_out
    time.sleep(2.5)
    assert not marker.exists()


def test_memory_and_output_limits():
    result = run_sandboxed("x = bytearray(3 * 1024 ** 3)", settings=CodeSandbox(memory_mb=512))
    assert result.returncode != 0 and "MemoryError" in result.stderr
    result = run_sandboxed("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")
    assert result.returncode not in (0, None)  # stopped by the file-size limit, not by the clock


def test_sandbox_runs_in_a_clean_folder_and_environment():
    result = run_sandboxed("import os\nprint(os.listdir('.'))\nprint(sorted(os.environ))")
    listing, env = result.stdout.splitlines()
    assert eval(listing) == sorted(["main.py", *_interpreter_folders_in_tmp()])
    assert "HF_HUB_OFFLINE" not in env and "PATH" in env


def test_missing_code_block_fails():
    verdict = run_verifier("code", "def add(a, b): return a + b", "assert add(1, 2) == 3")
    assert verdict.status == "fail" and "no ```python code block" in verdict.detail


def test_candidate_code_has_no_network_and_the_verdict_says_how(listening_server):
    port, accepted = listening_server
    expected = sandbox_mode().key
    time.sleep(0.3)
    before = len(accepted)
    reach = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()\nprint('connected')"
    result = run_sandboxed(reach)
    verdict = run_verifier("code", f"```python\n{reach}\n```", "assert True")
    passing = run_verifier("code", ADD, "assert add(1, 2) == 3")
    time.sleep(0.3)
    assert result.returncode != 0 and "connected" not in result.stdout and result.sandbox == expected
    assert verdict.status == "fail" and verdict.sandbox == expected == "namespaces+cgroup-v1"
    assert passing.status == "pass" and passing.sandbox == expected
    assert len(accepted) == before
    assert run_verifier("code", "no code here", "assert True").sandbox is None


def test_limits_come_from_the_configuration_never_from_the_data():
    """An answer or a prompt asking for more memory or time gets the configured limits all the same."""
    hog = "```python\nx = bytearray(400 * 1024 ** 2)\nprint(len(x))\n```"
    greedy = {"tests": "assert True", "memory_mb": 100000, "time_limit_s": 600}
    configured = {"sandbox": {"memory_mb": 256, "time_limit_s": 30}, "memory_mb": 100000, "time_limit_s": 600}
    verdict = run_verifier("code", hog, greedy, configured)
    assert verdict.status == "fail" and "MemoryError" in verdict.detail
    roomy = run_verifier("code", hog, greedy, {"sandbox": {"memory_mb": 1024, "time_limit_s": 30}})
    assert roomy.status == "pass", roomy
    sleeper = "```python\nimport time\ntime.sleep(30)\n```"
    started = time.monotonic()
    slow = run_verifier("code", sleeper, greedy, {"sandbox": {"time_limit_s": 1}, "time_limit_s": 600})
    assert slow.status == "fail" and "time limit exceeded (1 s)" in slow.detail and time.monotonic() - started < 10


def _interpreter_folders_in_tmp() -> list[str]:
    """Top folders of /tmp the sandbox shows read-only because this interpreter lives there (a checkout in /tmp)."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    return sorted({p.parts[2] for p in prefixes if p.is_relative_to("/tmp") and len(p.parts) > 2})
