"""Hostile programs against both users of the sandbox: the RFT ``code`` verifier and the SFT python tool.

Each program tries one way out (as root, the way CI runs) through the two public entry points,
``run_sandboxed`` and ``PythonSandbox.run``, with their default limits except a generous wall clock (a
busy machine must not turn a containment into a timeout) and, where the test is about memory, a
small total. Nothing here sends traffic to a non-loopback address: "outside" is a UDP ``connect``, a
route lookup that sends no packet.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fusionforge.mixers.sft.sandbox import PythonSandbox, SandboxLimits
from fusionforge.rft.verify_code import CodeSandbox, run_sandboxed

USERS = ["rft", "sft"]


def run_in(user: str, source: str, memory_mb: int | None = None) -> str:
    """What the program printed (and its error), run by the RFT verifier's sandbox or an SFT session."""
    if user == "rft":
        result = run_sandboxed(source, settings=CodeSandbox(time_limit_s=60, memory_mb=memory_mb or 1024))
        return result.stdout + result.stderr
    with PythonSandbox(limits=SandboxLimits(timeout_s=60, memory_mb=memory_mb or 512)) as box:
        result = box.run(source)
    return result.output + (result.error or "")


def sleep_token() -> str:
    """A ``sleep`` argument no other process has: find the program's processes on the host by it."""
    return f"59.{random.randrange(10**8):08d}"


def processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def survivors(token: str, settle_s: float = 1.0) -> list[int]:
    """The processes still carrying ``token`` once the sandbox has ended; killed here, so the host stays clean."""
    time.sleep(settle_s)
    left = processes_with(token)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


SETNS = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
own = os.stat("/proc/self/ns/net").st_ino
tried = joined = 0
for pid in ["1"] + [p for p in os.listdir("/proc") if p.isdigit()]:  # init's, then any process it can see
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino == own:
            continue
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    except OSError:
        continue
    tried += 1
    if libc.setns(fd, 0x40000000) == 0:  # CLONE_NEWNET
        joined += 1
        break
print("setns: joined" if joined else f"setns: refused ({tried} other namespaces could be opened)")
"""


@pytest.mark.parametrize("user", USERS)
def test_the_code_cannot_enter_the_host_network_namespace(user):
    printed = run_in(user, SETNS)
    assert "setns: refused" in printed and "joined" not in printed, printed


@pytest.mark.parametrize("user", USERS)
def test_the_host_loopback_is_unreachable_even_after_trying_setns(user, listening_server):
    port, accepted = listening_server
    time.sleep(0.3)
    before = len(accepted)
    program = (
        SETNS
        + f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    print("loopback: connected")
except OSError as exc:
    print("loopback: failed", exc.errno)
"""
    )
    printed = run_in(user, program)
    time.sleep(0.3)
    assert "loopback: failed" in printed and len(accepted) == before, printed


@pytest.mark.parametrize("user", USERS)
def test_there_is_no_route_outside_even_after_trying_setns(user):
    program = (
        SETNS
        + """
import errno, socket
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    probe.connect(("192.0.2.1", 9))  # TEST-NET-1; a UDP connect only looks the route up, it sends nothing
    print("outside: routed")
except OSError as exc:
    print("outside: unreachable" if exc.errno == errno.ENETUNREACH else f"outside: failed {exc.errno}")
print("interfaces:", sorted(name for _, name in socket.if_nameindex()))
"""
    )
    printed = run_in(user, program)
    assert "outside: unreachable" in printed and "interfaces: ['lo']" in printed, printed


@pytest.mark.parametrize("user", USERS)
def test_nothing_outside_the_private_folder_can_be_written(user, tmp_path):
    targets = [str(tmp_path / "escaped.txt"), os.path.join(sys.prefix, f"ff-hostile-{uuid.uuid4().hex}")]
    program = f"""
for path in {targets!r}:
    try:
        with open(path, "w") as handle:
            handle.write("escaped")
        print("wrote", path)
    except OSError as exc:
        print("refused", path, exc.errno)
with open("inside.txt", "w") as handle:
    handle.write("fine")
print("inside:", open("inside.txt").read())
"""
    try:
        printed = run_in(user, program)
        escaped = [path for path in targets if os.path.exists(path)]
    finally:
        for path in targets:
            Path(path).unlink(missing_ok=True)
    assert "wrote" not in printed and not escaped, printed
    assert "inside: fine" in printed  # the private folder is writable


@pytest.mark.parametrize("user", USERS)
def test_etc_shadow_cannot_be_read(user):
    program = """
try:
    with open("/etc/shadow", "rb") as handle:
        print("shadow: read", len(handle.read()) > 0)
except OSError as exc:
    print("shadow: refused", exc.errno)
"""
    printed = run_in(user, program)
    assert "shadow: refused" in printed, printed


@pytest.mark.parametrize("user", USERS)
def test_a_fork_bomb_is_capped_and_ends_with_the_sandbox(user):
    token = sleep_token()
    program = f"""
import os
started = 0
for _ in range(200):  # bounded, so that a sandbox that does not cap it still leaves the machine usable
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try:
            os.execv("/bin/sleep", ["sleep", "{token}"])
        finally:
            os._exit(0)
    started += 1
print("forked", started)
"""
    printed = run_in(user, program)
    left = survivors(token)
    forked = int(re.search(r"forked (\d+)", printed).group(1))
    assert forked < 32, printed  # the sandbox's process cap (32, the interpreter and its own included)
    assert left == []
    assert subprocess.run(["true"], timeout=30).returncode == 0  # the host can still start processes


@pytest.mark.parametrize("user", USERS)
def test_memory_spread_over_children_is_capped_in_total(user):
    """Each child stays under the per-process limit (256 MB); together they are over the sandbox's total
    (256 MB), so the kernel kills some: at most what fits completes."""
    children, mb = 3, 120
    program = f"""
import os, time
pids = []
for _ in range({children}):
    pid = os.fork()
    if pid == 0:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")  # when the total is over, the kernel picks a child, not this parent
        block = bytearray({mb} * 1024 * 1024)
        block[::4096] = b"x" * len(range(0, len(block), 4096))  # touch every page: really use the memory
        time.sleep(1)
        os._exit(0)
    pids.append(pid)
completed = sum(1 for pid in pids if os.waitpid(pid, 0)[1] == 0)
print("completed", completed, "of", len(pids))
"""
    printed = run_in(user, program, memory_mb=256)
    found = re.search(r"completed (\d+) of (\d+)", printed)
    assert found is not None and int(found.group(2)) == children, printed
    assert int(found.group(1)) * mb < 256, printed


@pytest.mark.parametrize("user", USERS)
def test_a_setsid_grandchild_does_not_outlive_the_sandbox(user):
    token = sleep_token()
    program = f"""
import os
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{token}"])
    os._exit(0)
os.wait()
print("spawned")
"""
    printed = run_in(user, program)
    assert "spawned" in printed, printed
    assert survivors(token) == []


HOST = """
import sys
from fusionforge.mixers.sft.sandbox import PythonSandbox, SandboxLimits
from fusionforge.rft.verify_code import CodeSandbox, run_sandboxed

if sys.argv[1] == "rft":
    run_sandboxed(sys.argv[2], settings=CodeSandbox(time_limit_s=60))
else:
    with PythonSandbox(limits=SandboxLimits(timeout_s=60)) as box:
        box.run(sys.argv[2])
print("host alive")
"""


@pytest.mark.parametrize("user", USERS)
def test_killing_the_parent_does_not_touch_the_host_process(user):
    """The host side runs in its own process here, so that a sandbox that lets the signal through kills that,
    not the test run."""
    program = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('sent')"
    host = subprocess.run(
        [sys.executable, "-c", HOST, user, program], capture_output=True, text=True, timeout=300, check=False
    )
    assert host.returncode == 0 and "host alive" in host.stdout, (host.returncode, host.stderr[-2000:])
