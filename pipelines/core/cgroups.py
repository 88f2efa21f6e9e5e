"""Caps on the *total* memory and process count of a process tree, through a cgroup of its own.

rlimits are per process: ten children of 100 MB each pass a 512 MB ``RLIMIT_AS``, and a fork bomb
is bounded only per user. A cgroup counts every process in it, children and grandchildren
included, whatever session or user they switch to. ``ProcessCaps.create`` makes one child cgroup
under this process's own (so any limit the machine already puts on us still holds), in cgroup v2
where the ``memory`` and ``pids`` controllers are delegated to us, else in the cgroup v1
``memory`` and ``pids`` hierarchies; it returns None where neither can be written (not root, a
read-only ``/sys/fs/cgroup``), and the caller falls back to rlimits and says so.

A process is moved in with ``add`` before it starts any child; ``kill_all`` SIGKILLs whatever is
inside; ``close`` kills and removes the group. Groups left by a killed process (its pid is in the
name) are removed by the next ``create`` on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PREFIX = "ff-sandbox-"
_V2_FILES = {"memory": ("memory.max", "memory.swap.max"), "pids": ("pids.max",)}


@dataclass(frozen=True)
class _Hierarchy:
    """Where a controller's cgroups for this process live: the folder of our own cgroup in that hierarchy."""

    controllers: tuple[str, ...]
    parent: Path
    version: int


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, file system type, super options) of every cgroup mount, from /proc/self/mountinfo."""
    found = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                found.append((fields[4].replace("\\040", " "), tail[0], tail[2]))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and ``""`` -> its v2 path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup", encoding="utf-8") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def _v2_hierarchy(mounts, own) -> _Hierarchy | None:
    for point, kind, _ in mounts:
        if kind != "cgroup2" or "" not in own:
            continue
        parent = Path(point) / own[""].lstrip("/")
        try:
            delegated = set((parent / "cgroup.subtree_control").read_text().split())
        except OSError:
            continue
        if {"memory", "pids"} <= delegated and _writable_dir(parent):
            return _Hierarchy(("memory", "pids"), parent, 2)
    return None


def _v1_hierarchies(mounts, own) -> list[_Hierarchy]:
    found = {}
    for point, kind, options in mounts:
        if kind != "cgroup":
            continue
        for controller in ("memory", "pids"):
            if controller in options.split(",") and controller in own and controller not in found:
                parent = Path(point) / own[controller].lstrip("/")
                if _writable_dir(parent):
                    found[controller] = _Hierarchy((controller,), parent, 1)
    return list(found.values()) if len(found) == 2 else []


@lru_cache(maxsize=1)
def _hierarchies() -> tuple[_Hierarchy, ...]:
    mounts, own = _mounts(), _own_paths()
    v2 = _v2_hierarchy(mounts, own)
    return (v2,) if v2 else tuple(_v1_hierarchies(mounts, own))


def cgroup_version() -> int | None:
    """2 or 1: the cgroup version ``ProcessCaps`` would use here; None when no cgroup can be made."""
    found = _hierarchies()
    return found[0].version if found else None


class ProcessCaps:
    """One cgroup (a folder per hierarchy) capping the memory and the process count of what is put in it."""

    def __init__(self, folders: list[tuple[_Hierarchy, Path]], memory_bytes: int) -> None:
        self._folders = folders
        self.memory_bytes = memory_bytes
        self.version = folders[0][0].version

    @classmethod
    def create(cls, memory_bytes: int, max_processes: int) -> ProcessCaps | None:
        """A new group with these caps, or None where cgroups cannot be used (the caller falls back to rlimits)."""
        hierarchies = _hierarchies()
        if not hierarchies:
            return None
        name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        folders: list[tuple[_Hierarchy, Path]] = []
        try:
            for hierarchy in hierarchies:
                _remove_stale(hierarchy.parent)
                folder = hierarchy.parent / name
                folder.mkdir()
                folders.append((hierarchy, folder))
            caps = cls(folders, memory_bytes)
            caps._limit(memory_bytes, max_processes)
        except OSError:
            for _, folder in folders:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            return None
        return caps

    def _limit(self, memory_bytes: int, max_processes: int) -> None:
        for hierarchy, folder in self._folders:
            if hierarchy.version == 2:
                (folder / "memory.max").write_text(str(memory_bytes))
                with contextlib.suppress(OSError):  # no swap accounting: nothing to cap
                    (folder / "memory.swap.max").write_text("0")
                (folder / "pids.max").write_text(str(max_processes))
            elif "memory" in hierarchy.controllers:
                (folder / "memory.limit_in_bytes").write_text(str(memory_bytes))
                with contextlib.suppress(OSError):  # memory + swap, where swap is accounted
                    (folder / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            else:
                (folder / "pids.max").write_text(str(max_processes))

    def add(self, pid: int) -> None:
        """Move process ``pid`` (and its threads) in; its later children are born inside."""
        for _, folder in self._folders:
            (folder / "cgroup.procs").write_text(str(pid))

    def pids(self) -> set[int]:
        found: set[int] = set()
        for _, folder in self._folders:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        return found

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory cap."""
        for hierarchy, folder in self._folders:
            name = "memory.events" if hierarchy.version == 2 else "memory.oom_control"
            if "memory" in hierarchy.controllers:
                with contextlib.suppress(OSError):
                    for line in (folder / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill":
                            return int(value)
        return 0

    def forks_refused(self) -> int:
        """How many forks the process cap refused."""
        for hierarchy, folder in self._folders:
            if "pids" in hierarchy.controllers:
                with contextlib.suppress(OSError, ValueError):
                    return int((folder / "pids.events").read_text().split()[-1])
        return 0

    def kill_all(self, wait_s: float = 5.0) -> None:
        """SIGKILL every process inside (again, for the ones forked meanwhile) until none is left."""
        deadline = time.monotonic() + wait_s
        while True:
            inside = self.pids()
            if not inside or time.monotonic() > deadline:
                return
            for pid in inside:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def close(self) -> None:
        """Kill what is inside and remove the group."""
        self.kill_all()
        for _, folder in self._folders:
            _rmdir_when_empty(folder)


def _rmdir_when_empty(folder: Path, wait_s: float = 2.0) -> None:
    """rmdir fails (EBUSY) until the kernel has reaped the killed processes: retry a little."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)


def _remove_stale(parent: Path) -> None:
    """Remove the empty groups of processes that died before closing theirs."""
    with contextlib.suppress(OSError):
        for folder in parent.glob(f"{PREFIX}*"):
            owner = folder.name[len(PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                with contextlib.suppress(OSError):
                    if not (folder / "cgroup.procs").read_text().split():
                        folder.rmdir()
