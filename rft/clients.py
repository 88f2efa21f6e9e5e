"""Model clients: turn sample requests into responses, as fast as the server allows and no faster.

``OpenAIClient`` talks to any OpenAI-compatible ``/v1/chat/completions`` (vLLM, SGLang,
``transformers serve``, hosted APIs) with asyncio and httpx:

- bounded concurrency: ``concurrency`` workers, each with its own kept-alive connection;
- a wall-clock timeout per attempt, and retries with exponential backoff and jitter on timeouts,
  connection errors, 408, 429 (``Retry-After`` honoured) and 5xx, up to ``max_retries``; any other
  status is a final error for that request (recorded, never raised);
- ``n``: a request for several samples of one prompt is sent once with ``n`` (the server shares the
  prefill). A server that answers with fewer choices (``transformers serve`` ignores ``n``) or
  rejects ``n`` with 400/422 is asked for the rest one sample per request, each with its own seed,
  and from then on only that way (``n_mode="never"`` starts there);
- sampling settings pass through: temperature, top_p, max_tokens, stop, seed, plus ``extra_body``
  (e.g. ``top_k`` for vLLM, ``generation_config`` for ``transformers serve``).

Other clients: ``fusionforge.rft.local_client.TransformersClient`` (in-process ``generate``) and
``fusionforge.rft.ray_vllm_client.RayVLLMClient`` (Ray Data LLM with the vLLM engine).
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fusionforge.pipelines.core.bounds import (
    COUNT,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_FRACTION,
    check_bounds,
    within,
)
from fusionforge.pipelines.core.errors import ConfigError

N_MODES = ("auto", "never")  # whether a request for several samples uses the server's n


@dataclass(frozen=True)
class Sampling:
    """What is sampled: passed to the server as is (``extra_body`` merged into the request body)."""

    temperature: float = within(NON_NEGATIVE, 1.0)
    top_p: float | None = within(POSITIVE_FRACTION, None)
    max_tokens: int = within(COUNT, 1024)
    stop: tuple[str, ...] = ()
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_bounds(self)

    def describe(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "extra_body": dict(self.extra_body),
        }


@dataclass(frozen=True)
class SampleRequest:
    """Samples ``indices`` (with ``seeds``) of one prompt in one round."""

    prompt_id: str
    messages: list[dict[str, Any]]
    round: int
    indices: tuple[int, ...]
    seeds: tuple[int, ...]
    sampling: Sampling

    def singles(self) -> list[SampleRequest]:
        return [replace(self, indices=(i,), seeds=(s,)) for i, s in zip(self.indices, self.seeds)]


@dataclass
class SampleResult:
    """One sample's response, or its final error after every retry."""

    prompt_id: str
    round: int
    index: int
    seed: int
    text: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    attempts: int = 1
    retries: dict[str, int] = field(default_factory=dict)
    error_kind: str | None = None
    error: str | None = None


class Client(ABC):
    """Produces results for requests, in whatever order they finish."""

    model: str

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What identifies the sampler in the settings hash (the model, not the address it is served at)."""

    @abstractmethod
    def generate(self, requests: Iterable[SampleRequest]) -> AsyncIterator[SampleResult]:
        """Results for every sample of every request; ``requests`` is consumed lazily."""

    async def aclose(self) -> None:  # noqa: B027 - most clients hold nothing to release
        """Release connections or models."""


RETRYABLE_STATUS = {408, 429}


class OpenAIClient(Client):
    """An OpenAI-compatible chat-completions endpoint; see the module docstring for the behaviour."""

    def __init__(
        self,
        endpoint: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 16,
        timeout_s: float = 300.0,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        n_mode: str = "auto",
        seed: int = 0,
    ) -> None:
        import httpx

        COUNT.require("concurrency", concurrency)
        POSITIVE.require("timeout_s", timeout_s)
        NON_NEGATIVE_INT.require("max_retries", max_retries)
        if n_mode not in N_MODES:
            raise ConfigError(f"n_mode must be 'auto' or 'never', not {n_mode!r}")
        base = endpoint.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.use_n = n_mode == "auto"
        self._rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        ssl_context = httpx.create_ssl_context()  # built once: each client would load the CA bundle again
        # One single-connection client per worker: httpcore's shared pool scans every connection for each
        # request, which at 64 connections cost more CPU than everything else in the loop (see bench/rft.py).
        self._http = [
            httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(timeout_s + 5.0),
                verify=ssl_context,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            for _ in range(concurrency)
        ]

    def identity(self) -> dict[str, Any]:
        return {"client": "openai", "model": self.model}

    async def generate(self, requests: Iterable[SampleRequest]) -> AsyncIterator[SampleResult]:
        source = iter(requests)
        split: collections.deque[SampleRequest] = collections.deque()  # single-sample requests still to send
        out: asyncio.Queue = asyncio.Queue(maxsize=self.concurrency * 4)
        changed = asyncio.Event()
        inflight = 0

        async def next_request() -> SampleRequest | None:
            while True:
                if split:
                    return split.popleft()
                request = next(source, None)
                if request is not None:
                    return request
                if inflight == 0:
                    return None
                changed.clear()
                await changed.wait()

        async def worker(http) -> None:
            nonlocal inflight
            while (request := await next_request()) is not None:
                inflight += 1
                try:
                    if len(request.indices) > 1 and not self.use_n:
                        first, *rest = request.singles()
                        split.extend(rest)
                        changed.set()
                        request = first
                    results, leftover = await self._send(http, request)
                    if leftover:
                        split.extend(leftover)
                        changed.set()
                    for result in results:
                        await out.put(result)
                finally:
                    inflight -= 1
                    changed.set()

        async def supervise() -> None:
            try:
                await asyncio.gather(*(worker(http) for http in self._http))
                await out.put(None)
            except BaseException as exc:  # surfaced to the consumer, never swallowed
                await out.put(exc)
                raise

        supervisor = asyncio.create_task(supervise())
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not supervisor.done():
                supervisor.cancel()
                await asyncio.gather(supervisor, return_exceptions=True)

    def _body(self, request: SampleRequest) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "seed": request.seeds[0],
        }
        if s.top_p is not None:
            body["top_p"] = s.top_p
        if s.stop:
            body["stop"] = list(s.stop)
        if len(request.indices) > 1:
            body["n"] = len(request.indices)
        body.update(s.extra_body)
        return body

    async def _send(self, http, request: SampleRequest) -> tuple[list[SampleResult], list[SampleRequest]]:
        """Results for the choices that came back, and single requests for the samples that did not."""
        import httpx

        body = self._body(request)
        started = time.monotonic()
        retries: dict[str, int] = {}
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                async with asyncio.timeout(self.timeout_s):
                    response = await http.post(self.url, json=body)
                status = response.status_code
                if status == 200:
                    try:
                        return self._parse(request, response.json(), started, attempt, retries)
                    except (ValueError, KeyError, TypeError, IndexError) as exc:
                        kind, detail = "bad_response", f"unreadable response body: {exc}"
                elif status in (400, 422) and "n" in body:
                    self.use_n = False  # the server refuses n: ask for each sample on its own
                    return [], request.singles()
                elif status in RETRYABLE_STATUS or status >= 500:
                    kind, detail = f"http_{status}", response.text[:300]
                    retry_after = _retry_after(response.headers.get("retry-after"))
                else:
                    return self._failed(request, f"http_{status}", response.text[:300], started, attempt, retries), []
            except (TimeoutError, httpx.TimeoutException):
                kind, detail = "timeout", f"no response within {self.timeout_s:g} s"
            except httpx.TransportError as exc:
                kind, detail = "connection", f"{type(exc).__name__}: {exc}"
            if attempt > self.max_retries:
                return self._failed(request, kind, detail, started, attempt, retries), []
            retries[kind] = retries.get(kind, 0) + 1
            await asyncio.sleep(self.backoff_s(attempt, retry_after))

    def backoff_s(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with equal jitter: half the step fixed, half random; at least Retry-After."""
        step = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        delay = step / 2 + self._rng.uniform(0, step / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    def _parse(
        self, request: SampleRequest, payload: dict[str, Any], started: float, attempts: int, retries: dict[str, int]
    ) -> tuple[list[SampleResult], list[SampleRequest]]:
        choices = sorted(payload["choices"], key=lambda c: c.get("index", 0))[: len(request.indices)]
        if not choices:
            raise ValueError("no choices")
        usage = payload.get("usage") or {}
        latency = time.monotonic() - started
        results = []
        for position, choice in enumerate(choices):
            message = choice["message"]
            text = message.get("content") or ""
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if reasoning:
                text = f"<think>{reasoning}</think>{text}"
            results.append(
                SampleResult(
                    request.prompt_id,
                    request.round,
                    request.indices[position],
                    request.seeds[position],
                    text,
                    choice.get("finish_reason"),
                    usage.get("prompt_tokens") if position == 0 else None,
                    usage.get("completion_tokens") if position == 0 else None,  # request totals, on the first choice
                    latency,
                    attempts,
                    dict(retries),
                )
            )
        missing = request.singles()[len(choices) :]
        if missing:
            self.use_n = False  # n was ignored: ask for each sample on its own from now on
        return results, missing

    def _failed(
        self, request: SampleRequest, kind: str, detail: str, started: float, attempts: int, retries: dict[str, int]
    ) -> list[SampleResult]:
        latency = time.monotonic() - started
        return [
            SampleResult(
                request.prompt_id,
                request.round,
                i,
                s,
                latency_s=latency,
                attempts=attempts,
                retries=dict(retries),
                error_kind=kind,
                error=f"{kind}: {detail}",
            )
            for i, s in zip(request.indices, request.seeds)
        ]

    async def aclose(self) -> None:
        for http in self._http:
            await http.aclose()


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
