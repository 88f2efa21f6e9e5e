"""A local HTTP/1.1 media server that answers from a table and counts every request: for tests and benchmarks.

Each path maps to a ``Route`` per attempt (the last one repeats): a status, a body, headers, a delay
before the answer, a slow body (``drip_s`` between chunks), a body with no ``Content-Length``
(chunked). That covers what ``fetch`` meets on the web (images, errors, ``Retry-After``, slow and
oversized responses, redirects and loops, opt-out headers) with a real socket and a real client.
``requests`` lists the paths asked for, in order, so a test can tell which URLs were sent twice.

    python -m fusionforge.pipelines.fetch.media_server --images 2000 --size 256   # prints its base URL
"""

from __future__ import annotations

import argparse
import asyncio
import io
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from fusionforge.pipelines.core.local_server import LocalServer

REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 404: "Not Found", 429: "Too Many Requests"}


@dataclass(frozen=True)
class Route:
    """One answer: ``status``, ``body`` and ``headers``, after ``delay_s``; ``drip_s`` between ``chunk``-byte pieces."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drip_s: float = 0.0
    chunk: int = 64 * 1024
    chunked: bool = False  # no Content-Length: Transfer-Encoding chunked


def image_route(data: bytes, content_type: str = "image/jpeg", **headers: str) -> Route:
    return Route(body=data, headers={"Content-Type": content_type, **headers})


def redirect_route(location: str, status: int = 302) -> Route:
    return Route(status=status, headers={"Location": location})


Routes = Mapping[str, Route | Sequence[Route]]


class MediaServer(LocalServer):
    """The server on 127.0.0.1 in a background thread; ``url(path)`` is a path's full URL."""

    thread_name = "media server"
    backlog = 1024

    def __init__(self, routes: Routes, fallback: Callable[[str], Route | None] | None = None, port: int = 0) -> None:
        self.routes = {path: [r] if isinstance(r, Route) else list(r) for path, r in routes.items()}
        self.fallback = fallback
        super().__init__("127.0.0.1", port)
        self.requests: list[str] = []
        self.times: list[float] = []  # time.monotonic() of each request, beside ``requests``
        self.hosts: list[str] = []  # the Host header of each request, beside ``requests``
        self._counts: Counter[str] = Counter()
        self.user_agents: set[str] = set()
        self.max_in_flight: Counter[str] = Counter()  # per Host header: the most requests answered at once
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def times_of(self, path: str) -> list[float]:
        with self._lock:
            return [t for p, t in zip(self.requests, self.times) if p == path]

    def count(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    def _route(self, path: str, host: str) -> Route:
        with self._lock:
            attempt = self._counts[path]
            self._counts[path] += 1
            self.requests.append(path)
            self.times.append(time.monotonic())
            self.hosts.append(host)
        if path in self.routes:
            answers = self.routes[path]
            return answers[min(attempt, len(answers) - 1)]
        found = self.fallback(path) if self.fallback else None
        return found or Route(status=404, body=b"not found", headers={"Content-Type": "text/plain"})

    async def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        host = headers.get("host", "")
        self.user_agents.add(headers.get("user-agent", ""))
        self._in_flight[host] += 1
        self.max_in_flight[host] = max(self.max_in_flight[host], self._in_flight[host])
        try:
            await self._answer(self._route(path, host), writer)
        finally:
            self._in_flight[host] -= 1
        return True

    async def _answer(self, route: Route, writer: asyncio.StreamWriter) -> None:
        if route.delay_s:
            await asyncio.sleep(route.delay_s)
        head = [f"HTTP/1.1 {route.status} {REASONS.get(route.status, 'Status')}"]
        head += [f"{k}: {v}" for k, v in route.headers.items()]
        head.append("Transfer-Encoding: chunked" if route.chunked else f"Content-Length: {len(route.body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for start in range(0, len(route.body), route.chunk):
            piece = route.body[start : start + route.chunk]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if route.chunked else piece)
            if route.drip_s:
                await writer.drain()
                await asyncio.sleep(route.drip_s)
        if route.chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()


def jpeg_bytes(size: int, seed: int = 0, quality: int = 90) -> bytes:
    """A ``size`` x ``size`` JPEG of a smooth gradient (so it compresses like a photo, not like noise)."""
    from PIL import Image

    image = Image.linear_gradient("L").resize((size, size)).rotate(seed % 360).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="/img/0.jpg ... /img/{N-1}.jpg")
    parser.add_argument("--size", type=int, default=256, help="side of the JPEGs, in pixels")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    bodies = [jpeg_bytes(args.size, seed) for seed in range(8)]

    def images(path: str) -> Route | None:
        name = path.removeprefix("/img/").removesuffix(".jpg")
        if not path.startswith("/img/") or not name.isdigit() or int(name) >= args.images:
            return None
        return Route(body=bodies[int(name) % len(bodies)], headers={"Content-Type": "image/jpeg"}, delay_s=args.latency)

    server = MediaServer({}, images, port=args.port).start()
    print(server.url(""), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
