"""The verifier worker process: JSON jobs on stdin, one JSON verdict per line on stdout.

Started by ``VerifierPool`` as ``python -m fusionforge.rft.verifier_worker PARENT_PID [MODULE...]``;
the modules are imported before it reports ready. Anything a verifier prints goes to stderr, so it
cannot corrupt the protocol.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import logging
import os
import signal
import sys

from fusionforge.rft.verdict import ERROR, Verdict
from fusionforge.rft.verifiers import run_verifier

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker when the pool's process dies (even by SIGKILL), so a verifier
    stuck in sympy never outlives a killed run; exit at once if the parent is already gone."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)


def main(parent: int, preload: list[str]) -> None:
    die_with_parent(parent)
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for module in preload:
        importlib.import_module(module)
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    protocol.write(b'{"ready": true}\n')
    for line in sys.stdin.buffer:
        job = json.loads(line)
        try:
            verdict = run_verifier(job["task"], job["response"], job["answer"], job["options"])
        except Exception as exc:  # noqa: BLE001 - every failure of a verifier is reported, never raised
            verdict = Verdict(ERROR, None, f"{type(exc).__name__}: {exc}"[:500])
        protocol.write(json.dumps(verdict.to_dict()).encode() + b"\n")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
