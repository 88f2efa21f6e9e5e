"""A scripted OpenAI-compatible server: answers from a table, injects faults, logs every call.

For testing an RFT set-up without a model: each ``/v1/chat/completions`` request is handed to a
``responder`` that decides the outcome from the last user message, the seed, the choice index and
how many times this same request was seen before (``attempt``): a ``Reply`` (text, finish reason,
extra delay) or a ``Fault`` (an HTTP status, a dropped connection, a malformed body). That pins
retries, timeouts, acceptance and resume exactly in tests, and gives the benchmark a server with a
fixed latency. ``n`` is ignored (like ``transformers serve``), honoured, or rejected with 422.

    python -m fusionforge.rft.scripted_server --latency 0.25 --text "\\boxed{4}"   # prints its URL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fusionforge.pipelines.core.local_server import LocalServer


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str = "stop"
    delay_s: float = 0.0


@dataclass(frozen=True)
class Fault:
    kind: str  # "status" | "drop" | "malformed"
    status: int = 500
    delay_s: float = 0.0
    retry_after: float | None = None


Outcome = Reply | Fault


@dataclass(frozen=True)
class Call:
    """What the responder sees of one request (and one choice of it)."""

    prompt: str
    seed: int | None
    choice: int
    attempt: int
    body: Mapping[str, Any]


Responder = Callable[[Call], Outcome]


def table_responder(table: Mapping[tuple[str, int], Sequence[Outcome]], default: Outcome | None = None) -> Responder:
    """Outcomes per (prompt, seed), one per attempt (the last repeats); ``default`` for anything else."""

    def respond(call: Call) -> Outcome:
        outcomes = table.get((call.prompt, call.seed))
        if outcomes is None:
            if default is None:
                return Fault("status", 404)
            return default
        return outcomes[min(call.attempt, len(outcomes) - 1)]

    return respond


def prompt_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message (text parts joined by newlines)."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not users:
        return ""
    content = users[-1].get("content")
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
    return str(content)


class ScriptedServer(LocalServer):
    """The server on 127.0.0.1 in a background thread; ``url`` is its ``/v1`` base."""

    thread_name = "scripted server"

    def __init__(
        self,
        responder: Responder,
        latency_s: float = 0.0,
        n_support: str = "ignore",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if n_support not in ("ignore", "honour", "reject"):
            raise ValueError("n_support must be ignore, honour or reject")
        self.responder = responder
        self.latency_s = latency_s
        self.n_support = n_support
        super().__init__(host, port)
        self.calls: list[dict[str, Any]] = []
        self._seen: dict[tuple[str, Any, Any], int] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        return await self._respond(method, path, body, writer)

    async def _respond(self, method: str, path: str, raw: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection was dropped on purpose."""
        if method == "GET" and path in ("/health", "/v1/models"):
            await _send(
                writer,
                200,
                {"status": "ok"}
                if path == "/health"
                else {"object": "list", "data": [{"id": "scripted", "object": "model"}]},
            )
            return True
        if method != "POST" or not path.endswith("/chat/completions"):
            await _send(writer, 404, {"error": f"no route {method} {path}"})
            return True
        body = json.loads(raw)
        n = int(body.get("n") or 1)
        prompt, seed = prompt_text(body), body.get("seed")
        if n > 1 and self.n_support == "reject":
            with self._lock:
                self.calls.append(
                    {
                        "prompt": prompt,
                        "seed": seed,
                        "n": n,
                        "attempt": 0,
                        "time": time.monotonic(),
                        "outcome": "n_rejected",
                    }
                )
            await _send(writer, 422, {"detail": "Unexpected fields in the request: {'n'}"})
            return True
        with self._lock:
            signature = (prompt, seed, n)
            attempt = self._seen.get(signature, 0)
            self._seen[signature] = attempt + 1
        choices = n if self.n_support == "honour" else 1
        outcomes = [self.responder(Call(prompt, seed, j, attempt, body)) for j in range(choices)]
        first = outcomes[0]
        with self._lock:
            self.calls.append(
                {
                    "prompt": prompt,
                    "seed": seed,
                    "n": n,
                    "attempt": attempt,
                    "time": time.monotonic(),
                    "outcome": first.kind if isinstance(first, Fault) else "reply",
                }
            )
        await asyncio.sleep(self.latency_s + first.delay_s)
        if isinstance(first, Fault):
            if first.kind == "drop":
                writer.transport.abort()
                return False
            if first.kind == "malformed":
                await _send_raw(writer, 200, b'{"choices": [', {})
                return True
            extra = {"Retry-After": f"{first.retry_after:g}"} if first.retry_after is not None else {}
            await _send(writer, first.status, {"error": {"message": f"scripted {first.status}"}}, extra)
            return True
        replies = [o if isinstance(o, Reply) else Reply("") for o in outcomes]
        await _send(
            writer,
            200,
            {
                "id": f"scripted-{len(self.calls)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "choices": [
                    {"index": j, "message": {"role": "assistant", "content": r.text}, "finish_reason": r.finish_reason}
                    for j, r in enumerate(replies)
                ],
                "usage": {
                    "prompt_tokens": len(prompt.split()),
                    "completion_tokens": sum(len(r.text.split()) for r in replies),
                    "total_tokens": len(prompt.split()) + sum(len(r.text.split()) for r in replies),
                },
            },
        )
        return True


async def _send(writer: asyncio.StreamWriter, status: int, payload: Any, headers: Mapping[str, str] | None = None):
    await _send_raw(writer, status, json.dumps(payload).encode(), headers or {})


async def _send_raw(writer: asyncio.StreamWriter, status: int, data: bytes, headers: Mapping[str, str]) -> None:
    head = [
        f"HTTP/1.1 {status} Scripted",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
    await writer.drain()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve one fixed answer with a fixed latency (benchmarks).")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds before each answer")
    parser.add_argument("--text", default="\\boxed{4}", help="the answer every request gets")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ScriptedServer(lambda call: Reply(args.text), latency_s=args.latency, port=args.port).start()
    print(server.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
