"""One writer per output folder: an exclusive lock on ``-o`` for as long as a run writes it.

The lock is ``flock`` on ``_work/lock``, so the kernel drops it when its holder dies: a killed run
never leaves a lock that blocks its own ``--resume``. The file names its holder (pid, host, start),
for the message that refuses a second writer and the one that notes a takeover; a holder that ends
normally empties it, so a name still in it on acquiring is a run that died. Where the file system
has no ``flock`` (some FUSE mounts), the holder's pid decides, which only works on one host.

A process may take the lock of a folder it already holds (a step that runs a second step into the
same folder, a library caller retrying after an error); it keeps it until ``release`` or its exit.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import RunError
from fusionforge.pipelines.core.io import WORK_DIR

LOCK_FILE = f"{WORK_DIR}/lock"
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
_held: dict[str, int] = {}  # resolved output folder -> the open lock file
log = logging.getLogger("fusionforge")


def acquire(out: str | os.PathLike) -> None:
    """Hold the lock of ``out`` (created if need be); a run of another process holding it is refused."""
    key = str(Path(out).resolve())
    if key in _held:
        return
    path = Path(key) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        previous = _holder(fd)
        if not _lock(fd, previous):
            raise RunError(
                f"{out} is being written by another fusionforge run ({_describe(previous)}); "
                "wait for it to end, or choose another -o"
            )
        if previous:
            log.warning(
                "%s: taking over the lock of a run that ended without releasing it (%s)", out, _describe(previous)
            )
        _write_holder(fd)
    except BaseException:
        os.close(fd)
        raise
    _held[key] = fd


def release(out: str | os.PathLike) -> None:
    """Give up the lock of ``out`` if this process holds it; the file is emptied first (a clean end)."""
    fd = _held.pop(str(Path(out).resolve()), None)
    if fd is None:
        return
    os.ftruncate(fd, 0)
    os.close(fd)  # drops the flock


def _lock(fd: int, previous: dict[str, Any]) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_FLOCK:
            raise
    return not previous or not _alive(previous)


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the holder may still run: a live pid on this host, or any holder on another host."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError):
        return True
    return True


def _holder(fd: int) -> dict[str, Any]:
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    if not text:
        return {}
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {"pid": "?", "host": "?", "started": text[:80]}
    return holder if isinstance(holder, dict) else {}


def _write_holder(fd: int) -> None:
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data + b"\n", 0)
    os.fsync(fd)


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
