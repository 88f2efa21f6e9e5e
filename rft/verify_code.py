"""The ``code`` verifier: run the response's Python code against the prompt's tests in a sandboxed process.

Ground truth (``answer``): either test code (a string of ``assert`` lines, run after the
candidate's code, pass = exit status 0), or ``{"cases": [{"input": ..., "output": ...}]}`` (each
case feeds ``input`` on stdin and compares stdout, trailing whitespace ignored), or
``{"tests": ...}``. Options: ``time_limit_s`` per run (default 5), ``memory_mb`` (default 1024),
``network`` (``auto`` | ``namespace`` | ``block``, default ``auto``).

The sandbox is a separate ``python -I`` process in a fresh temporary folder with a minimal
environment, its own process group, resource limits (address space, CPU seconds, file size,
open files, no core dumps), output to size-capped files, killed (with its whole group) at the
wall-clock limit and whenever the worker that started it dies, and cut off the network
(``pipelines/core/sandbox_network.py``): a new network namespace (``unshare -n``) where the
machine allows it, else sockets disabled inside Python only, which a subprocess can get around.
The verdict records which (``sandbox_network``) and the run's report counts them. It is isolation
against accidents and runaway code, not a security boundary: it does not hide the file system,
so run untrusted code inside a container or VM.

A candidate that exceeds its time limit *fails* ("time limit exceeded"): that is the candidate's
fault, like a TLE in a contest. Only the verifier itself hanging becomes ``verifier_timeout``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.sandbox_network import (
    BLOCK,
    block_network_source,
    network_prefix,
    resolve_network_mode,
)
from fusionforge.rft.extract import extract_code
from fusionforge.rft.verdict import FAIL, PASS, Verdict, no_answer

OUTPUT_LIMIT_BYTES = 16 * 1024 * 1024
_PR_SET_PDEATHSIG = 1
_RUN_MAIN = "\nimport runpy, sys\nsys.argv = ['main.py']\nrunpy.run_path('main.py', run_name='__main__')\n"


@dataclass(frozen=True)
class RunResult:
    returncode: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    network: str  # how the run was cut off the network: namespace or block

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def _limits(time_limit_s: float, memory_mb: int):
    def apply() -> None:  # runs in the child between fork and exec
        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        cpu = int(time_limit_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT_BYTES, OUTPUT_LIMIT_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        with contextlib.suppress(OSError, AttributeError):  # die with the verifier worker, even on SIGKILL
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return apply


def run_sandboxed(
    source: str, stdin: str = "", time_limit_s: float = 5.0, memory_mb: int = 1024, network: str = "auto"
) -> RunResult:
    """Run ``source`` with ``python -I`` under the limits in the module docstring."""
    mode = resolve_network_mode(network)
    launch = ["-c", block_network_source() + _RUN_MAIN] if mode == BLOCK else ["main.py"]
    folder = Path(tempfile.mkdtemp(prefix="fusionforge-sandbox-"))
    try:
        (folder / "main.py").write_text(source, encoding="utf-8")
        (folder / "stdin.txt").write_text(stdin, encoding="utf-8")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(folder),
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        with (
            open(folder / "stdin.txt", "rb") as inp,
            open(folder / "out.txt", "wb") as out,
            open(folder / "err.txt", "wb") as err,
        ):
            proc = subprocess.Popen(
                [*network_prefix(mode), sys.executable, "-I", *launch],
                cwd=folder,
                env=env,
                stdin=inp,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_limits(time_limit_s, memory_mb),
            )  # noqa: PLW1509 - no threads here
            try:
                returncode: int | None = proc.wait(timeout=time_limit_s)
            except subprocess.TimeoutExpired:
                returncode = None
            _kill_group(proc)
        read = lambda name: (folder / name).read_bytes()[:OUTPUT_LIMIT_BYTES].decode("utf-8", "replace")  # noqa: E731
        return RunResult(returncode, read("out.txt"), read("err.txt"), mode)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the sandbox and anything it started (its own process group), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _why(result: RunResult, time_limit_s: float) -> str:
    if result.timed_out:
        return f"time limit exceeded ({time_limit_s:g} s)"
    if result.returncode is not None and result.returncode < 0:
        return f"killed by signal {-result.returncode} (memory, CPU or output limit?)"
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"exit status {result.returncode}"


def _same_output(actual: str, expected: str) -> bool:
    clean = lambda text: [line.rstrip() for line in text.rstrip().splitlines()]  # noqa: E731
    return clean(actual) == clean(expected)


def verify_code(response: str, answer: Any, options: Mapping[str, Any]) -> Verdict:
    """Pass when the response's last Python code block passes every test."""
    spec = answer if isinstance(answer, Mapping) else {"tests": answer}
    options = {**{k: v for k, v in spec.items() if k in ("time_limit_s", "memory_mb", "network")}, **options}
    time_limit = float(options.get("time_limit_s", 5.0))
    memory_mb = int(options.get("memory_mb", 1024))
    network = resolve_network_mode(str(options.get("network", "auto")))
    if not isinstance(spec.get("tests"), str) and not isinstance(spec.get("cases"), list):
        raise ValueError("code answers need test code (a string) or {'cases': [{'input', 'output'}]}")
    code = extract_code(response)
    if code is None:
        return no_answer("no ```python code block found")
    shown = code if len(code) <= 200 else code[:200] + "..."
    ran = None  # the network mode the code ran under, once it ran
    if isinstance(spec.get("tests"), str):
        result = run_sandboxed(code + "\n\n" + spec["tests"] + "\n", "", time_limit, memory_mb, network)
        ran = result.network
        if result.returncode != 0:
            return Verdict(FAIL, shown, f"tests failed: {_why(result, time_limit)}", ran)
    for number, case in enumerate(spec.get("cases") or [], start=1):
        result = run_sandboxed(code, str(case.get("input", "")), time_limit, memory_mb, network)
        ran = result.network
        if result.returncode != 0:
            return Verdict(FAIL, shown, f"case {number}: {_why(result, time_limit)}", ran)
        if not _same_output(result.stdout, str(case.get("output", ""))):
            return Verdict(FAIL, shown, f"case {number}: wrong output {result.stdout[:80]!r}", ran)
    return Verdict(PASS, shown, "", ran)
