"""The ``code`` verifier: run the response's Python code against the prompt's tests in a sandbox.

Ground truth (``answer``): either test code (a string of ``assert`` lines, run after the
candidate's code, pass = exit status 0), or ``{"cases": [{"input": ..., "output": ...}]}`` (each
case feeds ``input`` on stdin and compares stdout, trailing whitespace ignored), or
``{"tests": ...}``.

The sandbox's settings come from the run's configuration only: ``options["sandbox"]``, which
``rft/loop.py`` fills from ``--verify-options '{"code": {...}}'`` and ``--allow-unsandboxed``,
over anything a prompt's ``verify`` field says. ``time_limit_s`` per run (default 5),
``memory_mb`` (1024, all the run's processes together), ``max_processes`` (32). A limit written
in an answer or a prompt is ignored: the data never sets its own limits.

Each run is ``python -I main.py`` in a ``pipelines/core/sandbox.Sandbox``: its own user, PID,
network and mount namespaces as uid 65534, a read-only system, a private ``/tmp`` holding
``main.py`` read-only, caps on the memory and process count of all its processes, stdin from and
output to size-capped files outside the sandbox, everything killed at the wall-clock limit or
when the run ends. The verdict records the isolation the run really got (``sandbox``).

A candidate that exceeds its time limit *fails* ("time limit exceeded"): that is the candidate's
fault, like a TLE in a contest. Only the verifier itself hanging becomes ``verifier_timeout``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.sandbox import Sandbox, SandboxLimits
from fusionforge.rft.extract import extract_code
from fusionforge.rft.verdict import FAIL, PASS, Verdict, no_answer

OUTPUT_LIMIT_BYTES = 16 * 1024 * 1024
LIMIT_KEYS = ("time_limit_s", "memory_mb", "max_processes")  # what a run's configuration may set


@dataclass(frozen=True)
class CodeSandbox:
    """How candidate code runs: set by the run's configuration (``options["sandbox"]``)."""

    time_limit_s: float = 5.0
    memory_mb: int = 1024
    max_processes: int = 32
    allow_unsandboxed: bool = False

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ConfigError("code sandbox: time_limit_s must be > 0")
        self.limits()  # memory and process limits are checked there

    @classmethod
    def from_options(cls, settings: Mapping[str, Any]) -> CodeSandbox:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"code sandbox: unknown setting(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(
                float(settings.get("time_limit_s", cls.time_limit_s)),
                int(settings.get("memory_mb", cls.memory_mb)),
                int(settings.get("max_processes", cls.max_processes)),
                bool(settings.get("allow_unsandboxed", False)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"code sandbox: {exc}") from exc

    def limits(self) -> SandboxLimits:
        return SandboxLimits(
            memory_mb=self.memory_mb,
            max_processes=self.max_processes,
            cpu_s=int(self.time_limit_s) + 1,
            file_mb=OUTPUT_LIMIT_BYTES // 1024**2,
        )


@dataclass(frozen=True)
class RunResult:
    returncode: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    sandbox: str  # the isolation the run really got (a SandboxMode key)
    signal: int | None = None  # the signal that ended it
    memory_exceeded: bool = False  # the kernel killed one of its processes at the memory cap

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_sandboxed(source: str, stdin: str = "", settings: CodeSandbox | None = None) -> RunResult:
    """Run ``source`` as ``python -I main.py`` in a sandbox (see the module docstring)."""
    settings = settings or CodeSandbox()
    with (
        Sandbox(settings.limits(), {"main.py": source.encode()}, settings.allow_unsandboxed) as box,
        tempfile.TemporaryDirectory(prefix="ff-code-io-") as io_dir,
    ):
        folder = Path(io_dir)
        (folder / "stdin.txt").write_text(stdin, encoding="utf-8")
        with (
            open(folder / "stdin.txt", "rb") as inp,
            open(folder / "out.txt", "wb") as out,
            open(folder / "err.txt", "wb") as err,
        ):
            proc = box.start(
                [sys.executable, "-I", "main.py"],
                stdin=inp,
                stdout=out,
                stderr=err,
                env={"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"},
            )
            try:
                returncode: int | None = proc.wait(timeout=settings.time_limit_s)
            except subprocess.TimeoutExpired:
                returncode = None
            box.kill()
        read = lambda name: (folder / name).read_bytes()[:OUTPUT_LIMIT_BYTES].decode("utf-8", "replace")  # noqa: E731
        return RunResult(
            returncode,
            read("out.txt"),
            read("err.txt"),
            box.mode.key,
            box.exit_signal(returncode),
            box.memory_exceeded(),
        )


def _why(result: RunResult, settings: CodeSandbox) -> str:
    if result.timed_out:
        return f"time limit exceeded ({settings.time_limit_s:g} s)"
    if result.memory_exceeded:
        return f"memory limit exceeded ({settings.memory_mb} MB for all its processes)"
    if result.signal is not None:
        name = signal.Signals(result.signal).name if result.signal in signal.valid_signals() else result.signal
        return f"killed by signal {result.signal} ({name}: CPU, output or memory limit?)"
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"exit status {result.returncode}"


def _same_output(actual: str, expected: str) -> bool:
    clean = lambda text: [line.rstrip() for line in text.rstrip().splitlines()]  # noqa: E731
    return clean(actual) == clean(expected)


def verify_code(response: str, answer: Any, options: Mapping[str, Any]) -> Verdict:
    """Pass when the response's last Python code block passes every test."""
    spec = answer if isinstance(answer, Mapping) else {"tests": answer}
    settings = CodeSandbox.from_options(options.get("sandbox") or {})
    if not isinstance(spec.get("tests"), str) and not isinstance(spec.get("cases"), list):
        raise ValueError("code answers need test code (a string) or {'cases': [{'input', 'output'}]}")
    code = extract_code(response)
    if code is None:
        return no_answer("no ```python code block found")
    shown = code if len(code) <= 200 else code[:200] + "..."
    ran = None  # the sandbox mode the code ran under, once it ran
    if isinstance(spec.get("tests"), str):
        result = run_sandboxed(code + "\n\n" + spec["tests"] + "\n", "", settings)
        ran = result.sandbox
        if result.returncode != 0:
            return Verdict(FAIL, shown, f"tests failed: {_why(result, settings)}", ran)
    for number, case in enumerate(spec.get("cases") or [], start=1):
        result = run_sandboxed(code, str(case.get("input", "")), settings)
        ran = result.sandbox
        if result.returncode != 0:
            return Verdict(FAIL, shown, f"case {number}: {_why(result, settings)}", ran)
        if not _same_output(result.stdout, str(case.get("output", ""))):
            return Verdict(FAIL, shown, f"case {number}: wrong output {result.stdout[:80]!r}", ran)
    return Verdict(PASS, shown, "", ran)
