"""A sandboxed, stateful Python session for tool calls: the code really runs, in a cage.

Each session is one child process: this venv's interpreter in isolated mode (``-I``), an empty
environment, a fresh temporary working directory holding only the files the conversation names,
rlimits on address space, CPU time, file size and open files (set by the child before any user
code), a wall-clock timeout per cell (the whole process group is killed when it passes), and no
network: a new, empty network namespace (``unshare -n``) when this machine allows it, otherwise
socket creation and name resolution are disabled inside the child before user code runs (weaker:
``pipelines/core/sandbox_network.py``). ``PythonSandbox.network`` says which one the session got.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.sandbox_network import (
    BLOCK,
    block_network_source,
    check_network_mode,
    network_prefix,
    resolve_network_mode,
)

KERNEL_SOURCE = (Path(__file__).with_name("_sandbox_kernel.py")).read_text(encoding="utf-8")
_EOF = b""  # returned by _read_line when the child is gone (a reply line is never empty)
_SIGNAL_STATUS = {signal.SIGXCPU: "cpu_limit", signal.SIGXFSZ: "file_size_limit", signal.SIGKILL: "killed"}


@dataclass(frozen=True)
class SandboxLimits:
    """What one session may use."""

    timeout_s: float = 10.0  # wall clock per cell
    memory_mb: int = 512  # address space of the child (numpy and Pillow need about 150 MB)
    cpu_s: int = 30  # CPU seconds for the whole session
    file_mb: int = 16  # largest file the code may write
    output_chars: int = 4000  # printed output kept per cell
    network: str = "auto"  # "auto", "namespace" (unshare -n, required) or "block" (in-process only)

    def __post_init__(self) -> None:
        check_network_mode(self.network)
        if self.timeout_s <= 0 or self.memory_mb < 64 or self.cpu_s < 1:
            raise ConfigError("sandbox limits: timeout must be > 0 s, memory >= 64 MB, CPU >= 1 s")


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
        self.files = dict(files or {})
        for rel in self.files:
            pure = PurePosixPath(rel)
            if pure.is_absolute() or ".." in pure.parts or not pure.parts:
                raise ValueError(f"sandbox file name {rel!r} must be a relative path without '..'")
        self.network = resolve_network_mode(self.limits.network)  # "namespace" or "block": what this session gets
        self._process: subprocess.Popen | None = None
        self.workdir: Path | None = None

    def __enter__(self) -> PythonSandbox:
        self.workdir = Path(tempfile.mkdtemp(prefix="ff-sandbox-"))
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _start(self) -> None:
        for rel, source in self.files.items():
            target = self.workdir / "work" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        (self.workdir / "work").mkdir(exist_ok=True)
        command_r, self._command_w = os.pipe()
        self._result_r, result_w = os.pipe()
        config = {
            "memory_mb": self.limits.memory_mb,
            "cpu_s": self.limits.cpu_s,
            "file_mb": self.limits.file_mb,
            "output_chars": self.limits.output_chars,
            "network_guard": block_network_source() if self.network == BLOCK else None,
            "command_fd": command_r,
            "result_fd": result_w,
        }
        work = str(self.workdir / "work")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": work,
            "TMPDIR": work,
            "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
        }
        self._log = open(self.workdir / "kernel.log", "wb")  # noqa: SIM115 - closed in close()
        try:
            self._process = subprocess.Popen(
                [*network_prefix(self.network), sys.executable, "-I", "-c", KERNEL_SOURCE, json.dumps(config)],
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                pass_fds=(command_r, result_w),
                start_new_session=True,
            )
        finally:
            os.close(command_r)
            os.close(result_w)
        self._buffer = b""

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
            self._kill()
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
            self._kill()
            code = -signal.SIGKILL
        status = _SIGNAL_STATUS.get(-code, "crashed") if code < 0 else "crashed"
        log = (self.workdir / "kernel.log").read_bytes().decode(errors="replace").strip()[-300:]
        return CellResult(
            status,
            "",
            f"the sandbox process ended with code {code}" + (f": {log}" if log else ""),
            time.monotonic() - started,
        )

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)

    def close(self) -> None:
        """Kill the session (if still running) and delete its working directory."""
        if self._process is not None:
            if self._process.poll() is None:
                self._kill()
            self._process = None
            for fd in (self._command_w, self._result_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._log.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
