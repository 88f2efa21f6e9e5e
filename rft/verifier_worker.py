"""The verifier worker process: JSON jobs on stdin, one JSON verdict per line on stdout.

Started by ``VerifierPool`` as ``python -m fusionforge.rft.verifier_worker [MODULE...]``; the
modules are imported before it reports ready. Anything a verifier prints goes to stderr, so it
cannot corrupt the protocol.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys

from fusionforge.rft.verdict import ERROR, Verdict
from fusionforge.rft.verifiers import run_verifier


def main(preload: list[str]) -> None:
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
    main(sys.argv[1:])
