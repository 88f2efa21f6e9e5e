"""A sandboxed, stateful Python session for tool calls: the code really runs, in a cage.

Each session is one process in a ``pipelines/core/sandbox.Sandbox`` (own user, PID, network and
mount namespaces as uid 65534, a read-only system, a private writable ``/tmp`` as its working
directory holding the files the conversation names read-only, caps on the memory and process
count of all its processes): this venv's interpreter in isolated mode (``-I``) with an empty
environment, running ``_sandbox_kernel.py``. Each cell has a wall-clock timeout, counted from the
moment the kernel is ready; past it the whole sandbox is killed. ``PythonSandbox.mode`` says what
isolation the session really got.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fusionforge.pipelines.core import sandbox as core
from fusionforge.pipelines.core.bounds import COUNT, POSITIVE, bound_problems, within
from fusionforge.pipelines.core.errors import ConfigError

KERNEL_SOURCE = (Path(__file__).with_name("_sandbox_kernel.py")).read_text(encoding="utf-8")
_EOF = b""  # returned by _read_line when the child is gone (a reply line is never empty)
_READY = b'{"ready": true}'  # the kernel's first line
START_TIMEOUT_S = 60.0  # for the sandbox and the interpreter to start; not counted in any cell's timeout
_SIGNAL_STATUS = {signal.SIGXCPU: "cpu_limit", signal.SIGXFSZ: "file_size_limit", signal.SIGKILL: "killed"}


@dataclass(frozen=True)
class SandboxLimits:
    """What one session may use (from the run's configuration)."""

    timeout_s: float = within(POSITIVE, 10.0)  # wall clock per cell
    memory_mb: int = 512  # all the session's processes together (numpy and Pillow need about 150 MB)
    max_processes: int = 32  # processes and threads of the session, all together
    cpu_s: int = 30  # CPU seconds for the whole session
    file_mb: int = 16  # largest file the code may write
    output_chars: int = within(COUNT, 4000)  # printed output kept per cell
    allow_unsandboxed: bool = False  # run without isolation where this machine cannot isolate

    def __post_init__(self) -> None:
        problems = bound_problems(self)
        if problems:
            raise ConfigError("sandbox limits: " + "; ".join(problems))
        self.system()  # the process limits are checked there

    def system(self) -> core.SandboxLimits:
        return core.SandboxLimits(
            memory_mb=self.memory_mb, max_processes=self.max_processes, cpu_s=self.cpu_s, file_mb=self.file_mb
        )


@dataclass(frozen=True)
class CellResult:
    """What a cell did; ``status``: ok, error, timeout, memory_limit, cpu_limit, file_size_limit, killed, crashed."""

    status: str
    output: str
    error: str | None = None
    seconds: float = 0.0
    truncated_chars: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class PythonSandbox:
    """``with PythonSandbox({"images/a.png": path}) as box: box.run("print(1)")``."""

    def __init__(self, files: dict[str, str | Path] | None = None, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._box = core.Sandbox(self.limits.system(), files, self.limits.allow_unsandboxed)
        self.mode = self._box.mode
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> PythonSandbox:
        self._box.__enter__()
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _start(self) -> None:
        command_r, self._command_w = os.pipe()
        self._result_r, result_w = os.pipe()
        config = {"output_chars": self.limits.output_chars, "command_fd": command_r, "result_fd": result_w}
        env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self._process = self._box.start(
                [sys.executable, "-I", "-c", KERNEL_SOURCE, json.dumps(config)],
                stdout=self._log,
                stderr=self._log,
                pass_fds=(command_r, result_w),
                env=env,
            )
        finally:
            os.close(command_r)
            os.close(result_w)
        self._buffer = b""
        if self._read_line(time.monotonic() + START_TIMEOUT_S) != _READY:  # no cell can run: they report crashed
            self._box.kill()

    def run(self, code: str) -> CellResult:
        """Run one cell in the session (state persists between cells); never raises for what the code does."""
        if self._process is None or self._process.poll() is not None:
            return CellResult("crashed", "", "the sandbox session is not running")
        started = time.monotonic()
        try:
            os.write(self._command_w, (json.dumps({"code": code}) + "\n").encode())
        except BrokenPipeError:
            return self._died(started)
        line = self._read_line(started + self.limits.timeout_s)
        seconds = time.monotonic() - started
        if line is _EOF:
            return self._died(started)
        if line is None:
            self._box.kill()
            return CellResult(
                "timeout", "", f"the cell ran longer than {self.limits.timeout_s:g} s and was killed", seconds
            )
        reply = json.loads(line)
        return CellResult(reply["status"], reply["output"], reply.get("error"), seconds, reply["truncated_chars"])

    def _read_line(self, deadline: float) -> bytes | None:
        """The next reply line; None when the deadline passed, ``_EOF`` when the child closed its end."""
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._result_r], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._result_r, 65536)
            if not chunk:
                return _EOF
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _died(self, started: float) -> CellResult:
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._box.kill()
            code = self._process.returncode
        number = self._box.exit_signal(code)
        if number == signal.SIGKILL and self._box.memory_exceeded():
            status = "memory_limit"
        else:
            status = _SIGNAL_STATUS.get(number, "crashed")
        self._log.seek(0)
        log = self._log.read().decode(errors="replace").strip()[-300:]
        how = f"signal {number}" if number else f"code {code}"
        return CellResult(
            status,
            "",
            f"the sandbox process ended with {how}" + (f": {log}" if log else ""),
            time.monotonic() - started,
        )

    def close(self) -> None:
        """Kill the session (if still running) and delete its files."""
        self._box.close()
        if self._process is not None:
            self._process = None
            for fd in (self._command_w, self._result_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._log.close()
