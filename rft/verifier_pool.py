"""A pool of killable verifier processes with a wall-clock timeout per verification.

sympy (behind math-verify) can hang forever on inputs such as ``9^{9^{9^{9}}}``, and signal-based
timeouts do not work off the main thread, so every verification runs in a worker *process*
(``python -m fusionforge.rft.verifier_worker``, JSON lines over pipes). A worker that does not
answer in time is killed with its whole process group (a code sandbox it started goes too) and
replaced; the verification becomes ``verifier_timeout``. A worker that dies or a verifier that
raises gives ``verifier_error``. Neither is ever a silent rejection.

``verify`` is thread-safe and blocking; ``verify_async`` runs it on the pool's own threads so an
asyncio loop keeps generating while verifiers work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError, RunError
from fusionforge.rft.verdict import ERROR, TIMEOUT, Verdict

READY = b'{"ready": true}'


class _Worker:
    """One verifier process; its stdout carries one JSON line per answer."""

    def __init__(self, preload: Sequence[str]) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker; closed in kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fusionforge.rft.verifier_worker", str(os.getpid()), *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,
        )
        self._buffer = b""

    def wait_ready(self, timeout_s: float) -> None:
        line = self._read_line(time.monotonic() + timeout_s)
        if line != READY:
            self.kill(close=False)
            self.stderr.seek(0)
            tail = self.stderr.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            self.stderr.close()
            raise RunError("a verifier worker did not start: " + (" | ".join(tail) or "no output"))

    def call(self, job: Mapping[str, Any], timeout_s: float) -> Verdict | None:
        """The worker's verdict; None when it did not answer within ``timeout_s`` (the caller kills it)."""
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._died()
        line = self._read_line(time.monotonic() + timeout_s)
        if line is None:
            return None
        if line == b"":
            return self._died()
        return Verdict(**json.loads(line))

    def _died(self) -> Verdict:
        code = self.proc.wait()
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        return Verdict(ERROR, None, f"verifier process died ({how})")

    def _read_line(self, deadline: float) -> bytes | None:
        """The next line without its newline; b"" at end of stream; None at the deadline."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return b""
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def kill(self, close: bool = True) -> None:
        """SIGKILL the worker and its process group; close its pipes (and its stderr file unless told not to)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr if close else None):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class VerifierPool:
    """``workers`` verifier processes; each verification gets ``timeout_s`` of wall-clock time.

    Args:
        workers: processes (and threads) verifying at once.
        timeout_s: wall-clock seconds one verification may take before its worker is killed.
        preload: modules each worker imports before it counts as started (``math_verify`` pulls in
            sympy, which takes a second or two: a slow first import must not look like a timeout).
        start_timeout_s: seconds a worker may take to start.
    """

    def __init__(
        self, workers: int = 2, timeout_s: float = 10.0, preload: Sequence[str] = (), start_timeout_s: float = 120.0
    ) -> None:
        if workers < 1 or timeout_s <= 0:
            raise ConfigError("the verifier pool needs workers >= 1 and timeout_s > 0")
        self.timeout_s = timeout_s
        self._preload = tuple(preload)
        self._start_timeout_s = start_timeout_s
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self.replaced = 0
        self._broken: RunError | None = None
        starting = [_Worker(self._preload) for _ in range(workers)]
        try:
            for worker in starting:
                worker.wait_ready(start_timeout_s)
        except RunError:
            for worker in starting:
                worker.kill()
            raise
        for worker in starting:
            self._all.add(worker)
            self._idle.put(worker)
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="verifier")

    def verify(
        self,
        task: str,
        response: str,
        answer: Any,
        options: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Verdict:
        """Verify one response; ``verifier_timeout`` / ``verifier_error`` when the verifier hangs or breaks."""
        limit = timeout_s or self.timeout_s
        job = {"task": task, "response": response, "answer": answer, "options": dict(options or {})}
        worker = self._idle.get()
        if worker is None:  # a replacement failed to start: every caller gets that error, none waits forever
            self._idle.put(None)
            raise self._broken
        healthy = False
        try:
            verdict = worker.call(job, limit)
            healthy = verdict is not None and worker.proc.poll() is None
            if verdict is None:
                verdict = Verdict(TIMEOUT, None, f"no verdict within {limit:g} s; verifier process killed")
            return verdict
        finally:
            if healthy:
                self._idle.put(worker)
            else:
                self._idle.put(self._replace(worker))

    async def verify_async(
        self,
        task: str,
        response: str,
        answer: Any,
        options: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Verdict:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self.verify, task, response, answer, options, timeout_s)

    def _replace(self, worker: _Worker) -> _Worker | None:
        """A fresh worker for a killed one; None (and the error kept for every caller) if it cannot start."""
        worker.kill()
        self._all.discard(worker)
        fresh = _Worker(self._preload)
        try:
            fresh.wait_ready(self._start_timeout_s)
        except RunError as exc:
            self._broken = exc
            return None
        self._all.add(fresh)
        self.replaced += 1
        return fresh

    def close(self) -> None:
        """Stop every worker (closing stdin ends them; stragglers are killed)."""
        self._threads.shutdown(wait=True)
        for worker in list(self._all):
            with contextlib.suppress(OSError):
                worker.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=5)
            worker.kill()
        self._all.clear()

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
