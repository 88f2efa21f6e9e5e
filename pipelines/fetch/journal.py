"""The decisions of an unfinished partition, one JSON line per URL, so a killed run never asks twice.

A partition's marker comes only once every URL in it is decided, and a partition holds thousands of
URLs: without this log a kill would send all of them again. Each decision is appended the moment it
is made (after its image file is in place) with one ``write`` on an ``O_APPEND`` descriptor, which a
killed process cannot leave half done; a resumed run reads the log and sends only the URLs it lacks.
A line cut short by a crash of the machine is dropped on reading (that URL is asked again). The log
is removed once the partition's parts and marker are written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.io import WORK_DIR

JOURNAL_DIR = f"{WORK_DIR}/journal"


def journal_path(out_dir: str | os.PathLike, partition: int) -> Path:
    return Path(out_dir) / JOURNAL_DIR / f"partition-{partition:06d}.jsonl"


def read_journal(path: str | os.PathLike) -> dict[int, dict[str, Any]]:
    """Every whole decision in the log at ``path``, by row key (empty when there is no log)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return {}
    entries: dict[int, dict[str, Any]] = {}
    for line in data.split(b"\n"):
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a cut line (or the empty one after the last newline)
        entries[entry["key"]] = entry
    return entries


class Journal:
    """The open log of one partition: the decisions read back from an earlier run, and ``add`` for new ones."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries = read_journal(self.path)
        self._cut_partial_line()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def add(self, entry: dict[str, Any]) -> None:
        """Record one decision (its ``key`` names the row)."""
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"  # key order kept: pairs lines
        data = line.encode("utf-8")
        if os.write(self._fd, data) != len(data):  # only a full disk cuts a write short
            raise OSError(f"{self.path}: short write")
        self.entries[entry["key"]] = entry

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def _cut_partial_line(self) -> None:
        """Drop a last line without its newline, so the next decision starts a line of its own."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)
