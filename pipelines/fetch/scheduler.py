"""Which URL is sent next: at most ``per_host`` requests in flight per host, hosts taking turns.

A fixed pool of workers shares one ``HostScheduler``. A worker that simply waited on its next URL's
host would stall behind a busy host while other hosts' URLs queue (head-of-line blocking), so
waiting URLs are kept per host and a worker takes the next one of the first host, in turn, that has
a free slot and is not paused (a host that answered 429 with ``Retry-After`` is paused for that
long, so no other request goes to it meanwhile). The producer waits once ``capacity`` URLs wait, so
memory stays bounded whatever the listing's size.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")


class HostScheduler(Generic[Item]):
    """Waiting items per host; ``take`` hands out one whose host is free, ``done`` frees its slot.

    Every method runs on the event loop's thread without awaiting inside its bookkeeping, so no lock
    is needed; waiters park on futures, and each event (an item queued, a slot freed) wakes one.
    """

    def __init__(self, per_host: int, capacity: int) -> None:
        self.per_host = per_host
        self.capacity = capacity
        self._waiting: dict[str, deque[Item]] = {}  # insertion order is the turn order
        self._active: dict[str, int] = {}
        self._paused: dict[str, float] = {}  # host -> monotonic time its pause ends
        self._queued = 0
        self._closed = False
        self._takers: deque[asyncio.Future] = deque()
        self._room: asyncio.Future | None = None  # the producer's, while it waits for room

    async def put(self, host: str, item: Item) -> None:
        """Queue ``item`` for ``host``; waits while ``capacity`` items wait already."""
        while self._queued >= self.capacity:
            self._room = asyncio.get_running_loop().create_future()
            await self._room
        self._waiting.setdefault(host, deque()).append(item)
        self._queued += 1
        self._wake_taker()

    def close(self) -> None:
        """No more items: ``take`` returns None once every queued item is handed out."""
        self._closed = True
        while self._takers:
            self._wake_taker()

    async def take(self) -> tuple[str, Item] | None:
        """The next (host, item) that may be sent now; None when closed and drained."""
        while True:
            picked = self._pick()
            if picked is not None:
                if self._room is not None and not self._room.done():
                    self._room.set_result(None)
                return picked
            if self._closed and not self._queued:
                self.close()  # every other parked taker learns it too
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._takers.append(waiter)
            wake = self._next_pause_end()
            try:
                if wake is None:
                    await waiter
                else:
                    await asyncio.wait([waiter], timeout=max(0.0, wake - time.monotonic()))
            finally:
                if not waiter.done():
                    waiter.cancel()  # skipped by ``_wake_taker``

    def done(self, host: str) -> None:
        """The request to ``host`` is finished: its slot is free."""
        left = self._active[host] - 1
        if left:
            self._active[host] = left
        else:
            del self._active[host]
        self._wake_taker()

    def pause(self, host: str, seconds: float) -> None:
        """Send nothing more to ``host`` for ``seconds`` (its ``Retry-After``)."""
        until = time.monotonic() + seconds
        self._paused[host] = max(until, self._paused.get(host, 0.0))

    def _wake_taker(self) -> None:
        while self._takers:
            waiter = self._takers.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _pick(self) -> tuple[str, Item] | None:
        now = None
        for host, queue in self._waiting.items():
            if self._active.get(host, 0) >= self.per_host:
                continue
            until = self._paused.get(host)
            if until is not None:
                now = now if now is not None else time.monotonic()
                if until > now:
                    continue
                del self._paused[host]
            item = queue.popleft()
            del self._waiting[host]
            if queue:
                self._waiting[host] = queue  # to the back: the next host has its turn first
            self._active[host] = self._active.get(host, 0) + 1
            self._queued -= 1
            return host, item
        return None

    def _next_pause_end(self) -> float | None:
        ends = [self._paused[h] for h in self._waiting if h in self._paused]
        return min(ends) if ends else None
