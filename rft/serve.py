"""Start and stop ``transformers serve`` for a local model folder (the demo and the tests use it).

``transformers serve`` (``pip install 'transformers[serving]'``) is an OpenAI-compatible server
that runs on CPU. Two quirks matter for sampling: it ignores ``n`` (the client then sends one
request per sample, each with its own seed) and it samples only when the generation config says
so: pass ``sampling_body()`` as the request's extra body (``--extra-body`` on the command line).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import RunError


def sampling_body(model_dir: str | Path, **overrides: Any) -> dict[str, Any]:
    """The ``generation_config`` extra body that makes ``transformers serve`` sample (it replaces the
    model's generation config, so the end and padding tokens are copied from it)."""
    config = json.loads((Path(model_dir) / "generation_config.json").read_text())
    settings = {k: config[k] for k in ("eos_token_id", "pad_token_id", "bos_token_id") if k in config}
    return {"generation_config": json.dumps({**settings, "do_sample": True, **overrides})}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TransformersServer:
    """``transformers serve MODEL_DIR`` on 127.0.0.1, pinned to that model; a context manager."""

    def __init__(
        self, model_dir: str | Path, port: int | None = None, device: str = "cpu", startup_timeout_s: float = 180.0
    ) -> None:
        self.model = str(model_dir)
        self.port = port or free_port()
        self.device = device
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="transformers-serve-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> TransformersServer:
        """Start the server and wait until ``/health`` answers (or raise with the log's tail)."""
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "transformers.cli.transformers",
                "serve",
                self.model,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--device",
                self.device,
                "--log-level",
                "error",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise RunError(f"transformers serve exited with status {self.proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        tail = self.log_tail()
        self.stop()
        raise RunError(f"transformers serve was not healthy after {self.startup_timeout_s:g} s: {tail}")

    def log_tail(self, lines: int = 8) -> str:
        text = Path(self._log.name).read_text(encoding="utf-8", errors="replace")
        return " | ".join(text.strip().splitlines()[-lines:]) or "no output"

    def stop(self) -> None:
        """Terminate the server (its whole process group), killing it if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> TransformersServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
