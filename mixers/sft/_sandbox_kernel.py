"""The program a sandbox child runs: a stateful exec loop (like an IPython kernel).

Run as ``python -I -c <this source> <config json>`` by ``sandbox.PythonSandbox`` inside a
``pipelines/core/sandbox.Sandbox``, which has already set every limit; it imports nothing from
fusionforge. It says it is ready on the result pipe; then cells arrive as JSON lines on one
pipe, and each cell's printed output (capped) and status go back on the other.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import sys
import traceback

READY = '{"ready": true}'


class CappedText(io.TextIOBase):
    """A text sink that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


def run_cell(code: str, namespace: dict, limit: int) -> dict:
    """Execute one cell; like IPython, a final expression's value is printed."""
    sink = CappedText(limit)
    status, error = "ok", None
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            tree = ast.parse(code, "<cell>", "exec")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 - running the cell is the point
            if last is not None:
                value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)  # noqa: S307
                if value is not None:
                    print(repr(value))
        except MemoryError:
            namespace.clear()
            status, error = "memory_limit", "MemoryError: the cell exceeded the sandbox memory limit"
        except BaseException as exc:  # noqa: BLE001 - a failing cell is reported, the kernel lives on
            status, error = "error", f"{type(exc).__name__}: {exc}"
            traceback.print_exc(limit=-3)
    return {"status": status, "output": sink.getvalue(), "truncated_chars": sink.dropped, "error": error}


def main() -> None:
    config = json.loads(sys.argv[1])
    namespace: dict = {"__name__": "__main__"}
    with (
        os.fdopen(config["command_fd"], "r", encoding="utf-8") as commands,
        os.fdopen(config["result_fd"], "w", encoding="utf-8") as results,
    ):
        results.write(READY + "\n")  # the first cell's clock starts now, not while the sandbox starts
        results.flush()
        for line in commands:
            reply = run_cell(json.loads(line)["code"], namespace, int(config["output_chars"]))
            results.write(json.dumps(reply) + "\n")
            results.flush()


if __name__ == "__main__":
    main()
