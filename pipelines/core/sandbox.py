"""A sandbox for code that may be hostile (model-written programs), shared by every step that runs such code.

Built on **bubblewrap** (``bwrap``, Flatpak's sandbox, Debian package ``bubblewrap``): it sets up
the namespaces, the mount tree and a reaping PID 1 correctly and is well kept; the same on bare
``unshare`` would mean re-writing it. What the code gets (``isolation`` ``namespaces``):

- its own user, PID, network, mount, IPC and UTS namespaces (and cgroup namespace where the kernel
  has one): it sees only its own processes, so it cannot signal anything on the host; it has
  only a loopback, and no route anywhere;
- uid/gid 65534 (nobody) on the host, no capabilities (bounding set empty, ``no_new_privs``), and
  no further user namespaces. bwrap started by root can only map the sandbox's uid onto root, so
  we give it a user namespace that maps 0 and 65534 (for the set-up, which must read an
  interpreter that may live under ``/root``) and ``setpriv`` drops to 65534 just before the code;
- a read-only view of the system (``/usr``, ``/etc``, the interpreter and its site-packages; no
  ``/home``, ``/root``, ``/work``, ``/var`` or host ``/tmp``), a fresh ``/dev`` and ``/proc``,
  and one writable place: a private ``/tmp`` (a tmpfs of at most ``memory_mb``, gone with the
  sandbox), in which the input files are bound read-only;
- caps on the total memory and process count of *all* its processes (``cgroups.ProcessCaps``),
  plus per-process rlimits (address space, so Python raises MemoryError; CPU seconds; file size;
  open files; no core files);
- an end: when the code's first process exits or is killed, the PID namespace dies and the
  kernel kills every process left in it (``setsid`` or not); the cgroup is emptied too; and the
  sandbox dies with the process that started it (``--die-with-parent``).

Weaker modes, recorded in ``SandboxMode`` and reported (``sandbox_summary``) with a warning:
``limits`` ``rlimit`` where no cgroup can be made (memory per process only; processes counted per
user); ``isolation`` ``namespaces-own-uid`` when not run as root (the code runs under the
caller's own uid, so it can read what the caller can read); ``none`` only when the user asked for
it (``allow_unsandboxed``) on a machine where bwrap cannot run: the code then runs as the caller,
with rlimits only. Without that permission ``Sandbox`` raises ``SandboxUnavailable`` instead.
Limits come from the caller's configuration only; nothing in the sandboxed data can change them.
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
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import IO, Any

from fusionforge.pipelines.core.bounds import COUNT, Bound, bound_problems, within
from fusionforge.pipelines.core.cgroups import ProcessCaps, cgroup_version
from fusionforge.pipelines.core.errors import ConfigError

NOBODY = 65534
ISOLATED, OWN_UID, UNSANDBOXED = "namespaces", "namespaces-own-uid", "none"
RLIMIT = "rlimit"
INSIDE_FOLDER = "/tmp"  # the code's working folder inside the sandbox: its only writable place
STAGING_PREFIX = "ff-sandbox-"  # + the owning pid: the private copies of the input files, on the host
START_TIMEOUT_S = 30.0
SANDBOX_MEMORY_MB = Bound(integer=True, min=64)  # numpy and Pillow alone need about 150 MB
SANDBOX_PROCESSES = Bound(integer=True, min=4)  # the interpreter and the sandbox's own
OPEN_FILES = Bound(integer=True, min=16)  # the interpreter opens a dozen before any code runs
_SYSTEM_DIRS = ("/usr", "/etc")
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ISOLATION_LABELS = {
    ISOLATED: "namespaces (bubblewrap; user, pid, network, mount; uid 65534; read-only system)",
    OWN_UID: "namespaces under the caller's own uid (bubblewrap, not run as root)",
    UNSANDBOXED: "none (allowed explicitly: the code ran as this user)",
}
_WARNINGS = {
    OWN_UID: "the sandboxed code ran under your own uid (not root, so it could not switch to nobody): "
    "it could read any file you can read",
    UNSANDBOXED: "the code ran WITHOUT a sandbox (allowed explicitly): it could read and write your files, "
    "reach the network and signal your processes",
    RLIMIT: "memory and process counts were capped per process only (no writable cgroup): a program "
    "spreading over many processes could use more",
}


class SandboxUnavailable(ConfigError):
    """This machine cannot isolate code, and running it unsandboxed was not allowed."""


@dataclass(frozen=True)
class SandboxLimits:
    """What the code in one sandbox may use; set by the run's configuration, never by the data."""

    # all its processes together (and per process, as the address-space limit)
    memory_mb: int = within(SANDBOX_MEMORY_MB, 512)
    max_processes: int = within(SANDBOX_PROCESSES, 32)  # processes and threads, all together
    cpu_s: int = within(COUNT, 30)  # CPU seconds per process
    file_mb: int = within(COUNT, 16)  # largest file it may write
    open_files: int = within(OPEN_FILES, 64)  # per process

    def __post_init__(self) -> None:
        problems = bound_problems(self)
        if problems:
            raise ConfigError("sandbox limits: " + "; ".join(problems))


@dataclass(frozen=True)
class SandboxMode:
    """How a sandbox really ran: its isolation and how its limits were enforced."""

    isolation: str  # namespaces | namespaces-own-uid | none
    limits: str  # cgroup-v2 | cgroup-v1 | rlimit

    @property
    def key(self) -> str:
        """``isolation+limits``: what verdicts and ledger rows record."""
        return f"{self.isolation}+{self.limits}"

    @classmethod
    def from_key(cls, key: str) -> SandboxMode:
        isolation, _, limits = key.partition("+")
        return cls(isolation, limits)

    @property
    def weaknesses(self) -> list[str]:
        if self.isolation == UNSANDBOXED:
            return [_WARNINGS[UNSANDBOXED]]
        found = [_WARNINGS[self.isolation]] if self.isolation in _WARNINGS else []
        return found + ([_WARNINGS[RLIMIT]] if self.limits == RLIMIT else [])

    def label(self) -> str:
        limits = "rlimits per process" if self.limits == RLIMIT else f"{self.limits} caps on all processes"
        return f"{_ISOLATION_LABELS.get(self.isolation, self.isolation)}; {limits}"


def sandbox_mode(allow_unsandboxed: bool = False) -> SandboxMode:
    """The mode a sandbox gets on this machine; raises ``SandboxUnavailable`` where it cannot isolate
    and ``allow_unsandboxed`` is false. Steps call it before any work, so they refuse up front."""
    isolation, why = _isolation()
    if isolation is None:
        if not allow_unsandboxed:
            raise SandboxUnavailable(
                f"cannot run untrusted code in a sandbox here: {why}. Install bubblewrap "
                "(apt-get install bubblewrap) where user namespaces are allowed, or pass "
                "--allow-unsandboxed to run it without isolation (it could then read your files "
                "and reach the network)."
            )
        isolation = UNSANDBOXED
    version = cgroup_version() if isolation != UNSANDBOXED else None  # unsandboxed code has no pause to be moved in
    return SandboxMode(isolation, f"cgroup-v{version}" if version else RLIMIT)


class Sandbox:
    """One sandboxed process at a time, in a private folder that holds ``files`` read-only.

    ``with Sandbox(limits, {"main.py": b"print(1)"}) as box: proc = box.start([sys.executable, "-I", "main.py"])``.
    ``files`` maps a relative path (as the code sees it, from its working folder) to the bytes or
    the host file to put there. ``mode`` says what the sandbox really got.
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        files: Mapping[str, str | Path | bytes] | None = None,
        allow_unsandboxed: bool = False,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.files = dict(files or {})
        for rel in self.files:
            pure = PurePosixPath(rel)
            if pure.is_absolute() or ".." in pure.parts or not pure.parts or rel.startswith("."):
                raise ValueError(f"sandbox file name {rel!r} must be a relative path without '..'")
        self.mode = sandbox_mode(allow_unsandboxed)
        self.process: subprocess.Popen | None = None
        self._caps: ProcessCaps | None = None
        self._staging: Path | None = None

    @property
    def folder(self) -> str:
        """The working folder as the code sees it."""
        return INSIDE_FOLDER if self.mode.isolation != UNSANDBOXED else str(self._staging)

    def __enter__(self) -> Sandbox:
        _remove_stale_staging(Path(tempfile.gettempdir()))
        self._staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-"))
        try:
            for rel, content in self.files.items():
                target = self._staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    target.write_bytes(content)
                else:
                    shutil.copyfile(content, target)
                target.chmod(0o444)  # read by uid 65534 through the read-only bind
            if self.mode.limits != RLIMIT:
                self._caps = ProcessCaps.create(self.limits.memory_mb * 1024**2, self.limits.max_processes)
                if self._caps is None:  # cgroups went away since the mode was decided: say so
                    self.mode = SandboxMode(self.mode.isolation, RLIMIT)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(
        self,
        argv: Sequence[str],
        *,
        stdin: int | IO | None = subprocess.DEVNULL,
        stdout: int | IO | None = None,
        stderr: int | IO | None = None,
        pass_fds: Sequence[int] = (),
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen:
        """Start ``argv`` in the sandbox (its working folder is ``folder``); the caller waits with a timeout."""
        if self._staging is None or self.process is not None:
            raise RuntimeError("a Sandbox runs one process, inside its 'with' block")
        environment = {"PATH": "/usr/bin:/bin", "HOME": self.folder, "TMPDIR": self.folder, "LANG": "C.UTF-8"}
        environment.update(env or {})
        streams = {"stdin": stdin, "stdout": stdout, "stderr": stderr, "env": environment}
        if self.mode.isolation == UNSANDBOXED:
            self.process = subprocess.Popen(
                [*self._rlimits(), *argv],
                cwd=self._staging,
                pass_fds=tuple(pass_fds),
                start_new_session=True,
                **streams,
            )
            return self.process
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        own = [info_w, block_r]
        userns = _nobody_userns() if self.mode.isolation == ISOLATED else None
        command = [*self._rlimits(), *_bwrap_args(self.mode.isolation, self.limits, userns, self._mounts())]
        command += ["--info-fd", str(info_w), "--block-fd", str(block_r), "--", *_drop_to_nobody(self.mode), *argv]
        try:
            self.process = subprocess.Popen(
                command,
                pass_fds=(*pass_fds, *own, *([userns] if userns is not None else [])),
                start_new_session=True,
                **streams,
            )
        finally:
            for fd in own:
                os.close(fd)
        try:
            self._admit(info_r)
        except BaseException:
            self.kill()
            raise
        finally:
            with contextlib.suppress(OSError):
                os.write(block_w, b"1")  # bwrap's child waits for this before it starts the code
            os.close(block_w)
            os.close(info_r)
        return self.process

    def _admit(self, info_r: int) -> None:
        """Put the sandbox's PID 1 into the cgroup while bwrap holds it, before it starts anything."""
        child = _read_child_pid(info_r, time.monotonic() + START_TIMEOUT_S)
        if child is not None and self._caps is not None:
            self._caps.add(child)

    def _rlimits(self) -> list[str]:
        """``prlimit`` before the command: per-process limits, inherited by everything it starts."""
        limits = self.limits
        memory = limits.memory_mb * 1024**2
        args = [
            _tool("prlimit"),
            f"--as={memory}",
            f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",
            f"--fsize={limits.file_mb * 1024**2}",
            f"--nofile={limits.open_files}",
            "--core=0",
        ]
        if self.mode.limits == RLIMIT:  # no cgroup: processes counted per user, not per sandbox (weaker)
            uid = NOBODY if self.mode.isolation == ISOLATED else os.getuid()
            args.append(f"--nproc={limits.max_processes + _processes_of(uid)}")
        return [*args, "--"]

    def _mounts(self) -> list[str]:
        """The sandbox's private /tmp with the input files bound read-only in it."""
        size = self.limits.memory_mb * 1024**2
        args = ["--perms", "1777", "--size", str(size), "--tmpfs", INSIDE_FOLDER]
        made = {INSIDE_FOLDER}
        for rel in sorted(self.files):
            inside = f"{INSIDE_FOLDER}/{rel}"
            args += _parent_dirs(inside, made)
            args += ["--ro-bind", str(self._staging / rel), inside]
        return args + ["--chdir", INSIDE_FOLDER]

    def exit_signal(self, returncode: int | None) -> int | None:
        """The signal that ended the code, from its exit status (bwrap reports a signal as 128 + its number)."""
        if returncode is None:
            return None
        if returncode < 0:
            return -returncode
        if self.mode.isolation != UNSANDBOXED and 128 < returncode <= 128 + 64:
            return returncode - 128
        return None

    def memory_exceeded(self) -> bool:
        """True when the kernel killed one of its processes for going over the total memory cap."""
        return self._caps is not None and self._caps.oom_kills() > 0

    def forks_refused(self) -> int:
        """How many process creations the process cap refused."""
        return self._caps.forks_refused() if self._caps is not None else 0

    def kill(self) -> None:
        """SIGKILL everything the sandbox runs and reap its first process."""
        if self._caps is not None:
            self._caps.kill_all()
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)  # bwrap: its PID 1 dies with it (die-with-parent)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)

    def close(self) -> None:
        """Kill what still runs, remove the cgroup and the private files."""
        if self.process is not None and self.process.poll() is None:
            self.kill()
        if self._caps is not None:
            self._caps.close()
            self._caps = None
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None


def sandbox_summary(used: Mapping[str, int]) -> dict[str, Any]:
    """The report entry for the sandboxes a step ran: a label, the counts by mode, a warning for any weaker mode."""
    counts = {key: int(n) for key, n in sorted(used.items()) if n}
    if not counts:
        label = "none ran"
    elif len(counts) == 1:
        label = SandboxMode.from_key(next(iter(counts))).label()
    else:
        label = "mixed: " + "; ".join(f"{SandboxMode.from_key(k).label()} x{n}" for k, n in counts.items())
    weaknesses = list(dict.fromkeys(w for key in counts for w in SandboxMode.from_key(key).weaknesses))
    return {"isolation": label, "runs_by_mode": counts, "warning": "; ".join(weaknesses) or None}


def _remove_stale_staging(folder: Path) -> None:
    """Remove the input copies of processes that were killed before they could (a verifier worker, say)."""
    for path in folder.glob(f"{STAGING_PREFIX}*"):
        owner = path.name[len(STAGING_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(path, ignore_errors=True)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SandboxUnavailable(f"{name!r} is not installed (or not on PATH)")
    return path


def _drop_to_nobody(mode: SandboxMode) -> list[str]:
    """``setpriv`` as the code's launcher: uid/gid 65534, no groups, no capabilities at all, no_new_privs."""
    if mode.isolation != ISOLATED:
        return []
    return [
        _tool("setpriv"),
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def _bwrap_args(isolation: str, limits: SandboxLimits, userns: int | None, mounts: list[str]) -> list[str]:
    args = [_tool("bwrap"), "--die-with-parent", "--new-session"]
    args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if isolation == ISOLATED:
        args += ["--userns", str(userns), "--cap-drop", "ALL"]
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]  # for setpriv
    else:
        args += ["--unshare-user", "--disable-userns", "--uid", str(NOBODY), "--gid", str(NOBODY), "--cap-drop", "ALL"]
    # an interpreter under /tmp (a checkout there) is bound after the private /tmp, which would hide it
    return [*args, *_system_view(), "--dev", "/dev", "--proc", "/proc", *mounts, *_interpreter_in_tmp()]


@lru_cache(maxsize=1)
def _system_view_cached(paths: tuple[str, ...]) -> tuple[str, ...]:
    args: list[str] = []
    bound = [*_SYSTEM_DIRS]
    for directory in _SYSTEM_DIRS:
        args += ["--ro-bind", directory, directory]
    for link in _SYSTEM_LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
            bound.append(link)
    made = set(bound)
    for path in paths:
        if path == "/" or any(_inside(path, b) for b in bound):
            continue
        args += _parent_dirs(path, made)
        args += ["--ro-bind", path, path]
        bound.append(path)
        made.add(path)
    return tuple(args)


def _system_view() -> list[str]:
    """Read-only binds of the system and of this interpreter (its prefixes and site-packages)."""
    return list(_system_view_cached(tuple(p for p in _interpreter_paths() if not _inside(p, INSIDE_FOLDER))))


def _interpreter_in_tmp() -> list[str]:
    """Read-only binds, inside the private /tmp, of the interpreter folders that lie under the host's /tmp."""
    args: list[str] = []
    made = {INSIDE_FOLDER}
    for path in _interpreter_paths():
        if _inside(path, INSIDE_FOLDER) and path != INSIDE_FOLDER:
            args += _parent_dirs(path, made)
            args += ["--ro-bind", path, path]
            made.add(path)
    return args


def _interpreter_paths() -> list[str]:
    """The folders ``sys.executable -I`` needs to start and import this environment's packages."""
    wanted = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(sys.executable)}
    wanted |= {p for p in sys.path if p and p.rstrip("/").endswith(("site-packages", "dist-packages", "lib-dynload"))}
    both = {os.path.abspath(p) for p in wanted} | {os.path.realpath(p) for p in wanted}
    existing = sorted(p for p in both if os.path.isdir(p))
    return [p for p in existing if not any(p != q and _inside(p, q) for q in existing)]


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _parent_dirs(path: str, made: set[str]) -> list[str]:
    """``--dir`` for each missing parent of ``path``, mode 0755 (bwrap makes them 0700: closed to nobody)."""
    args = []
    parents = list(PurePosixPath(path).parents)[::-1][1:]  # without "/"
    for parent in map(str, parents):
        if parent in made:
            continue
        args += ["--perms", "0755", "--dir", parent]
        made.add(parent)
    return args


def _read_child_pid(fd: int, deadline: float) -> int | None:
    """The sandbox PID 1's host pid from bwrap's ``--info-fd`` JSON; None if bwrap ended first."""
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise OSError("bwrap did not report its child in time")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    if not data.strip():
        return None
    return int(json.loads(data)["child-pid"])


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    count += 1
    return count


_HOLDER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000) != 0:
    sys.exit("unshare(CLONE_NEWUSER) failed: errno %d" % ctypes.get_errno())
print("unshared", flush=True)
sys.stdin.readline()
with open("/proc/sys/user/max_user_namespaces", "w") as limit:
    limit.write("0")
print("ready", flush=True)
sys.stdin.read()
"""
_userns_lock = threading.Lock()
_userns_fd: int | None = None


def _nobody_userns() -> int:
    """An fd of a user namespace mapping uids/gids 0 and 65534 onto themselves, where no further
    user namespace can be made; made once per process by a short-lived helper, then shared."""
    global _userns_fd
    with _userns_lock:
        if _userns_fd is not None:
            return _userns_fd
        holder = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _HOLDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            if _read_line(holder, "unshared") is None:
                raise OSError(f"could not make a user namespace: {holder.stderr.read().strip()}")
            mapping = f"0 0 1\n{NOBODY} {NOBODY} 1\n"
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{holder.pid}/{name}", "w", encoding="ascii") as handle:
                    handle.write(mapping)
            holder.stdin.write("mapped\n")
            holder.stdin.flush()
            if _read_line(holder, "ready") is None:
                raise OSError(f"could not set up the user namespace: {holder.stderr.read().strip()}")
            _userns_fd = os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            with contextlib.suppress(OSError):
                holder.stdin.close()
            try:
                holder.wait(timeout=10)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait()
            holder.stdout.close()
            holder.stderr.close()
        return _userns_fd


def _read_line(process: subprocess.Popen, expected: str, timeout_s: float = 30.0) -> str | None:
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline().strip() if ready else ""
    return line if line == expected else None


@lru_cache(maxsize=1)
def _isolation() -> tuple[str | None, str]:
    """(the isolation this machine gives, or None; why not), found once per process by a trial run."""
    isolation = ISOLATED if os.geteuid() == 0 else OWN_UID
    try:
        userns = _nobody_userns() if isolation == ISOLATED else None
        mounts = ["--perms", "1777", "--tmpfs", INSIDE_FOLDER, "--chdir", INSIDE_FOLDER]
        command = [*_bwrap_args(isolation, SandboxLimits(), userns, mounts), "--"]
        command += [*_drop_to_nobody(SandboxMode(isolation, RLIMIT)), sys.executable, "-I", "-S", "-c", "pass"]
        done = subprocess.run(
            command,
            pass_fds=(userns,) if userns is not None else (),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ConfigError) as exc:
        return None, str(exc)
    if done.returncode != 0:
        return None, f"bwrap failed: {done.stderr.strip()[-300:] or f'exit status {done.returncode}'}"
    return isolation, ""
