"""How a sandboxed child process is cut off the network, shared by every sandbox that runs model-written code.

- ``namespace``: the child starts under ``unshare -n``, in a new network namespace whose only
  interface is a loopback that is down. Nothing the code does (sockets, a ``curl`` subprocess,
  ``ctypes``) reaches any network, this machine's included. Needs root or user namespaces.
- ``block``: the fallback. Before user code runs, the child's Python replaces socket creation and
  name resolution with functions that raise. Ordinary Python networking fails, but code can still
  reach the network through a subprocess, ``ctypes`` or raw system calls: a guard against
  accidents, not against code that tries.

``auto`` is ``namespace`` where this machine allows it, else ``block``. The mode is resolved on
the machine that starts the child; users record the mode each child really ran under, report it,
and warn when it was ``block``.
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
from collections.abc import Mapping
from functools import lru_cache

from fusionforge.pipelines.core.errors import ConfigError

NETWORK_MODES = ("auto", "namespace", "block")
NAMESPACE, BLOCK = "namespace", "block"
LABELS = {NAMESPACE: "namespace (unshare -n)", BLOCK: "block (sockets disabled in-process only)"}
BLOCK_WARNING = (
    "the sandboxed code ran with the network blocked only inside Python (sockets and name resolution "
    "disabled): a subprocess or ctypes could still reach the network. Run where 'unshare -n' works "
    "(root or user namespaces) to cut it with a network namespace."
)


def check_network_mode(mode: str) -> None:
    if mode not in NETWORK_MODES:
        raise ConfigError(f"network mode {mode!r}: use one of {', '.join(NETWORK_MODES)}")


@lru_cache(maxsize=1)
def network_namespace_available() -> bool:
    """True when ``unshare -n`` can start a process in a new network namespace here (needs root or userns)."""
    path = shutil.which("unshare")
    if path is None:
        return False
    try:
        done = subprocess.run([path, "-n", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def resolve_network_mode(mode: str) -> str:
    """``namespace`` or ``block`` for the requested mode on this machine; ``namespace`` it cannot give fails."""
    check_network_mode(mode)
    if mode == BLOCK:
        return BLOCK
    if network_namespace_available():
        return NAMESPACE
    if mode == NAMESPACE:
        raise ConfigError("network mode 'namespace' needs 'unshare -n' to work here (root or user namespaces)")
    return BLOCK


def network_prefix(resolved: str) -> list[str]:
    """What goes before the child's command line: ``unshare -n`` for ``namespace``, nothing for ``block``."""
    return [shutil.which("unshare") or "unshare", "-n"] if resolved == NAMESPACE else []


def block_network() -> None:
    """Make socket creation and name resolution raise in this interpreter (runs in the child, before user code)."""
    import _socket
    import socket

    def refuse(*_args, **_kwargs):
        raise PermissionError("network access is disabled in this sandbox")

    class NoSocket(_socket.socket):
        def __init__(self, *_args, **_kwargs) -> None:
            refuse()

    for module in (_socket, socket):
        module.socket = NoSocket
        for name in (
            "socketpair",
            "getaddrinfo",
            "gethostbyname",
            "gethostbyname_ex",
            "gethostbyaddr",
            "create_connection",
            "create_server",
            "fromfd",
        ):
            if hasattr(module, name):
                setattr(module, name, refuse)
    socket.SocketType = NoSocket


def block_network_source() -> str:
    """Python source that defines and calls ``block_network``: what a ``block`` child runs first."""
    return inspect.getsource(block_network) + "\n\nblock_network()\n"


def network_summary(used: Mapping[str, int]) -> dict[str, object]:
    """The report entry for children run per mode: a label, the counts, and the warning when any was ``block``."""
    counts = {mode: int(n) for mode, n in sorted(used.items()) if n}
    if not counts:
        label = "none (no sandboxed code ran)"
    elif len(counts) == 1:
        label = LABELS.get(next(iter(counts)), next(iter(counts)))
    else:
        label = "mixed: " + ", ".join(f"{LABELS.get(mode, mode)} x{n}" for mode, n in counts.items())
    return {"network": label, "runs_by_network": counts, "warning": BLOCK_WARNING if counts.get(BLOCK) else None}
