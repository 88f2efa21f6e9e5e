"""The append-only results log: every finished request and every verdict, one JSON line each.

A sample is keyed by (prompt id, round, sample index, settings hash), the settings hash covering
the model and everything that changes what is sampled (temperature, top-p, max tokens, extra body,
seed, system prompt). A verdict is keyed by the sample key plus the verifier settings' hash.

Kill safety: each record is one ``write`` to a file opened with ``O_APPEND``, written as soon as
its request returns, so a killed run loses at most the requests in flight. A torn last line (a
kill in the middle of a write) is cut off when the log is opened again. On resume, a key with a
stored response is never sent again; a stored generation *error* (a request that failed after
all retries) and a verifier timeout or error are tried again, because those are not outcomes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fusionforge.rft.verdict import ERROR, TIMEOUT

SampleKey = tuple[str, int, int, str]  # prompt id, round, sample index, settings hash


def stable_hash(value: Any, length: int = 16) -> str:
    """A short sha256 of ``value`` as canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def sample_seed(base_seed: int, prompt_id: str, round_index: int, sample_index: int) -> int:
    """The seed of one sample: distinct per (prompt, round, index), the same on every rerun."""
    digest = hashlib.sha256(f"{base_seed}\x00{prompt_id}\x00{round_index}\x00{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def sample_key(record: dict[str, Any]) -> SampleKey:
    return record["prompt_id"], int(record["round"]), int(record["index"]), record["settings"]


class ResultStore:
    """The log at ``path``: loaded on open (resume), appended to as results arrive."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.samples: dict[SampleKey, dict[str, Any]] = {}
        self.verdicts: dict[tuple[SampleKey, str], dict[str, Any]] = {}
        self.torn_bytes = 0
        self.loaded_records = 0
        self._load()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):  # a record torn by a kill: drop it, its request is simply sent again
            self.torn_bytes = len(data) - cut
            with open(self.path, "r+b") as handle:
                handle.truncate(cut)
        for line in data[:cut].splitlines():
            if line.strip():
                self._remember(json.loads(line))
                self.loaded_records += 1

    def _remember(self, record: dict[str, Any]) -> None:
        key = sample_key(record)
        if record["kind"] == "sample":
            self.samples[key] = record
        else:
            self.verdicts[(key, record["verifier"])] = record

    def append(self, record: dict[str, Any]) -> None:
        """Write one record (``kind`` = ``sample`` or ``verdict``) and remember it."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode("utf-8"))
        self._remember(record)

    def has_response(self, key: SampleKey) -> bool:
        """True when ``key`` was answered (so it must never be sent again)."""
        record = self.samples.get(key)
        return record is not None and record.get("error") is None

    def verdict(self, key: SampleKey, verifier: str) -> dict[str, Any] | None:
        """The latest verdict of ``key`` under ``verifier`` (any status), or None."""
        return self.verdicts.get((key, verifier))

    def needs_verdict(self, key: SampleKey, verifier: str) -> bool:
        """True when ``key`` has no verdict under ``verifier`` or only a timeout/error one (tried again)."""
        record = self.verdicts.get((key, verifier))
        return record is None or record["status"] in (TIMEOUT, ERROR)

    def forget_text(self, key: SampleKey) -> None:
        """Drop a response's text from memory (it stays in the log); only passing texts are needed later."""
        record = self.samples.get(key)
        if record is not None and record.get("text") is not None:
            self.samples[key] = {**record, "text": None, "chars": len(record["text"])}

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
