"""One URL's HTTP exchange: the body of an image response, or why there is none.

Checks run in the order that costs the least: the status, then the headers (``X-Robots-Tag``
opt-outs, ``Content-Length`` against the size cap, ``Content-Type`` against the allow-list), and
only then the body, streamed and abandoned the moment it passes the cap (a server that sends no
length, or lies about it, cannot make the run hold more). Redirects are followed up to a limit; a
loop ends there. Transient failures (a timeout, a broken connection, 408, 429, 5xx) are retried with
exponential backoff and jitter, ``Retry-After`` honoured (429 also pauses the host, see
``scheduler.py``); what still fails is a ``failed`` outcome. Everything else is final at once.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from fusionforge.pipelines.core.errors import MissingDependency
from fusionforge.pipelines.fetch.config import AGENT, FetchConfig
from fusionforge.pipelines.fetch.robots import opt_out

RETRYABLE_STATUS = {408, 429}
BACKOFF_MAX_S = 30.0
MAX_RETRY_AFTER_S = 120.0  # a server asking for a longer wait gets no retry: the URL fails instead
# Images are compressed already; asking for no Content-Encoding also keeps a few compressed bytes from
# expanding into a large chunk before the size cap sees it (a server that encodes anyway is still capped).
HEADERS = {"Accept": "image/*,*/*;q=0.5", "Accept-Encoding": "identity"}


@dataclass
class Download:
    """The body (``data``) when every check passed, else the ledger ``reason`` (``http_404``, ``too_large``...).

    ``failed``: the URL could not be fetched (a transient failure outlasted the retries), as opposed
    to a decision against it.
    """

    data: bytes | None = None
    reason: str | None = None
    detail: str = ""
    failed: bool = False
    http_status: int | None = None
    content_type: str | None = None
    attempts: int = 0
    bytes_read: int = 0
    retries: dict[str, int] = field(default_factory=dict)


class _Final(Exception):
    """Ends an attempt with a decision (no retry)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _Transient(Exception):
    """Ends an attempt with a failure worth retrying."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.retry_after = reason, detail, retry_after


class Downloader:
    """Fetches URLs, one ``httpx.AsyncClient`` per worker; ``pause(host, seconds)`` hears a host's Retry-After."""

    def __init__(self, cfg: FetchConfig, pause: Callable[[str, float], None] | None = None) -> None:
        require_httpx()
        import httpx

        self.cfg = cfg
        self._pause = pause
        self._rng = random.Random(cfg.run.seed)
        ssl_context = httpx.create_ssl_context()  # built once: each client would load the CA bundle again
        # One single-connection client per worker, as rft/clients.py does: httpcore scans every pooled
        # connection for each request, so one shared pool of 64 ran at a fifth of the speed (bench/fetch.py).
        self._http = [
            httpx.AsyncClient(
                headers=HEADERS | {"User-Agent": cfg.user_agent()},
                timeout=httpx.Timeout(cfg.timeout_s),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                verify=ssl_context,
                follow_redirects=True,
                max_redirects=cfg.max_redirects,
            )
            for _ in range(cfg.concurrency)
        ]

    async def aclose(self) -> None:
        for client in self._http:
            await client.aclose()

    async def fetch(self, url: str, host: str, worker: int) -> Download:
        """The outcome of ``url`` after at most ``1 + retries`` attempts, over ``worker``'s connection."""
        outcome = Download()
        while True:
            outcome.attempts += 1
            try:
                async with asyncio.timeout(self.cfg.timeout_s):
                    outcome.data = await self._attempt(self._http[worker], url, outcome)
                return outcome
            except _Final as final:
                outcome.reason, outcome.detail = final.reason, final.detail
                return outcome
            except _Transient as transient:
                reason, detail, retry_after = transient.reason, transient.detail, transient.retry_after
            except TimeoutError:
                reason, detail, retry_after = "timeout", f"no complete response within {self.cfg.timeout_s:g} s", None
            outcome.http_status = None if reason in ("timeout", "connection") else outcome.http_status
            if retry_after is not None and self._pause is not None:
                self._pause(host, min(retry_after, MAX_RETRY_AFTER_S))
            too_long = retry_after is not None and retry_after > MAX_RETRY_AFTER_S
            if outcome.attempts > self.cfg.retries or too_long:
                wait = f"; the server asks to wait {retry_after:g} s" if too_long else ""
                outcome.reason, outcome.failed = reason, True
                outcome.detail = f"{detail} ({outcome.attempts} attempts{wait})"
                return outcome
            outcome.retries[reason] = outcome.retries.get(reason, 0) + 1
            await asyncio.sleep(self.backoff_s(outcome.attempts, retry_after))

    def backoff_s(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with equal jitter (half fixed, half random); at least ``Retry-After``."""
        step = min(BACKOFF_MAX_S, self.cfg.backoff_s * 2 ** (attempt - 1))
        delay = step / 2 + self._rng.uniform(0, step / 2)
        return max(delay, retry_after) if retry_after is not None else delay

    async def _attempt(self, http, url: str, outcome: Download) -> bytes:
        import httpx

        try:
            async with http.stream("GET", url) as response:
                outcome.http_status = status = response.status_code
                if status != 200:
                    raise _failure_of_status(status, response)
                self._check_headers(response)
                outcome.content_type = response.headers.get("content-type")
                return await self._read_body(response, outcome)
        except httpx.TooManyRedirects as exc:
            raise _Final("too_many_redirects", f"more than {self.cfg.max_redirects} redirects ({exc})") from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise _Final("bad_url", f"{type(exc).__name__}: {exc}") from exc
        except httpx.DecodingError as exc:
            raise _Final("bad_encoding", f"the body's Content-Encoding cannot be decoded: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise TimeoutError from exc
        except httpx.TransportError as exc:
            raise _Transient("connection", f"{type(exc).__name__}: {exc}"[:300]) from exc

    def _check_headers(self, response) -> None:
        """Opt-outs, the announced length and the content type: refused before a byte of the body is read."""
        if not self.cfg.ignore_opt_out:
            directive = opt_out(response.headers.get_list("x-robots-tag"), AGENT)
            if directive is not None:
                raise _Final(f"opt_out_{directive}", f"X-Robots-Tag: {directive}")
        length = response.headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.cfg.max_bytes:
            raise _Final("too_large", f"Content-Length {int(length):,} > --max-bytes {self.cfg.max_bytes:,}")
        content_type = response.headers.get("content-type")
        if content_type is not None and not self._allowed(content_type):
            raise _Final("not_an_image", f"Content-Type {content_type[:100]}")

    def _allowed(self, content_type: str) -> bool:
        media_type = content_type.split(";", 1)[0].strip().lower()
        return any(fnmatch.fnmatchcase(media_type, pattern.lower()) for pattern in self.cfg.content_types)

    async def _read_body(self, response, outcome: Download) -> bytes:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            outcome.bytes_read = len(body)
            if len(body) > self.cfg.max_bytes:
                raise _Final("too_large", f"the body passed --max-bytes {self.cfg.max_bytes:,}; abandoned")
        return bytes(body)


def require_httpx() -> None:
    """Refuse before any work when the ``fetch`` extra is missing."""
    try:
        import httpx  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("httpx", "fetch") from exc


def _failure_of_status(status: int, response) -> Exception:
    """Retry 408, 429 and 5xx (transient by definition); any other status is the server's answer."""
    detail = f"HTTP {status} {response.reason_phrase}".strip()
    if status in RETRYABLE_STATUS or status >= 500:
        return _Transient(f"http_{status}", detail, retry_after_s(response.headers.get("retry-after")))
    return _Final(f"http_{status}", detail)


def retry_after_s(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header: a number, or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
