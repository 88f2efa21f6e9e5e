"""An asyncio TCP server on a thread of its own: the local servers that tests and benchmarks talk to.

The RFT scripted model server and fetch's media server differ only in what they answer; starting
the loop on a thread, learning the port the system chose, and a stop that cancels every open
connection are this one base class.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self


class LocalServer:
    """Serve ``handle`` on ``host:port`` (port 0: one the system picks, read back after ``start``)."""

    thread_name = "local-server"
    backlog = 100

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one connection; subclasses say how."""
        raise NotImplementedError

    def start(self) -> Self:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            start = asyncio.start_server(self.handle, self.host, self.port, backlog=self.backlog)
            self._server = self._loop.run_until_complete(start)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name=self.thread_name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"the {self.thread_name} did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
