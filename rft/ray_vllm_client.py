"""Offline batch inference with Ray Data LLM and the vLLM engine, for GPU clusters.

Needs the ``ray-vllm`` extra on every machine of the cluster (``pip install 'fusionforge[ray-vllm]'``:
Ray Data LLM and the vLLM build it pins, CUDA GPUs); without it the client refuses to start and
names the extra. Configuration (``fusionforge rft run --client ray-vllm``, see docs/install.md):

- ``--model``: the model source vLLM loads (a local folder, or a hub name the cluster can reach);
- ``--engine-kwargs JSON``: passed to vLLM as ``engine_kwargs`` (``tensor_parallel_size``,
  ``max_model_len``, ``enable_prefix_caching``, ``max_num_seqs`` ...);
- ``--engine-concurrency N``: vLLM replicas (Ray actors, one per GPU group);
- ``--ray-address``: the cluster (default: a local Ray).

Each sample is one row (``sampling_params`` carries its seed, so samples differ); rows stream back
as Ray finishes them and are logged one by one, so ``--resume`` works as with the HTTP client.
Rows that fail come back with ``__inference_error__`` (``should_continue_on_error``) and are
recorded as generation errors. An engine replica whose process dies is restarted at most
``TASK_RETRIES`` times (Ray Data's default is forever); past that the run ends with the error, the
results log keeps every sample already received, and ``--resume`` sends only the rest. Prompts
with images switch on the multimodal preparation stage.
vLLM does not report a finish reason through Ray Data; a sample that used all ``max_tokens`` is
marked ``length``. This path is not exercised by the test suite (vllm does not install on CPU-only
machines); the row mapping functions below and the refusal are.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from fusionforge.pipelines.core.bounds import COUNT
from fusionforge.pipelines.core.errors import MissingDependency
from fusionforge.pipelines.core.ray_env import TASK_RETRIES, init_ray, remote_args_allowed
from fusionforge.rft.clients import Client, SampleRequest, SampleResult


def request_rows(requests: Iterable[SampleRequest]) -> list[dict[str, Any]]:
    """One Ray Data row per sample, with that sample's vLLM sampling parameters."""
    rows = []
    for request in requests:
        s = request.sampling
        for index, seed in zip(request.indices, request.seeds):
            params = {"temperature": s.temperature, "max_tokens": s.max_tokens, "seed": seed, **dict(s.extra_body)}
            if s.top_p is not None:
                params["top_p"] = s.top_p
            if s.stop:
                params["stop"] = list(s.stop)
            rows.append(
                {
                    "prompt_id": request.prompt_id,
                    "round": request.round,
                    "index": index,
                    "seed": seed,
                    "messages": request.messages,
                    "sampling_params": params,
                }
            )
    return rows


def result_from_row(row: dict[str, Any], latency_s: float) -> SampleResult:
    """A ``SampleResult`` from one output row of the vLLM processor."""
    error = row.get("__inference_error__") or None
    base = SampleResult(row["prompt_id"], int(row["round"]), int(row["index"]), int(row["seed"]), latency_s=latency_s)
    if error:
        base.error_kind, base.error = "engine_error", f"engine_error: {str(error)[:300]}"
        return base
    generated = int(row.get("num_generated_tokens") or 0)
    base.text = row.get("generated_text") or ""
    base.finish_reason = "length" if generated >= int(row["sampling_params"]["max_tokens"]) else "stop"
    base.prompt_tokens, base.completion_tokens = int(row.get("num_input_tokens") or 0), generated
    return base


def require_engine() -> None:
    """Refuse early, naming the extra, when vLLM or Ray Data LLM (and what it imports) is missing."""
    for module in ("vllm", "ray.data.llm"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingDependency(
                module,
                "ray-vllm",
                f"{exc}; vLLM runs on CUDA GPUs: on a machine without "
                "them use --client openai or --client transformers",
            ) from exc


class RayVLLMClient(Client):
    """Ray Data's ``vLLMEngineProcessorConfig`` + ``build_processor`` over the round's samples."""

    def __init__(
        self,
        model_source: str,
        engine_kwargs: dict[str, Any] | None = None,
        concurrency: int = 1,
        batch_size: int = 64,
        ray_address: str | None = None,
    ) -> None:
        COUNT.require("engine_concurrency", concurrency)
        require_engine()
        self.model = model_source
        self.engine_kwargs = dict(engine_kwargs or {})
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.ray_address = ray_address

    def identity(self) -> dict[str, Any]:
        return {"client": "ray-vllm", "model": self.model, "engine_kwargs": self.engine_kwargs}

    async def generate(self, requests: Iterable[SampleRequest]) -> AsyncIterator[SampleResult]:
        rows = request_rows(requests)
        if not rows:
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        thread = threading.Thread(target=self._run, args=(rows, loop, queue), daemon=True)
        thread.start()
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _run(self, rows: list[dict[str, Any]], loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        try:
            import ray
            from ray.data.llm import build_processor, vLLMEngineProcessorConfig

            init_ray(self.ray_address)
            has_images = any(
                isinstance(m.get("content"), list) and any(p.get("type") == "image_url" for p in m["content"])
                for row in rows
                for m in row["messages"]
            )
            config = vLLMEngineProcessorConfig(
                model_source=self.model,
                engine_kwargs=self.engine_kwargs,
                concurrency=self.concurrency,
                batch_size=self.batch_size,
                should_continue_on_error=True,
                prepare_multimodal_stage=has_images,
            )
            processor = build_processor(
                config,
                preprocess=lambda row: {"messages": row["messages"], "sampling_params": row["sampling_params"]},
                postprocess=lambda row: {
                    k: row.get(k)
                    for k in (
                        "prompt_id",
                        "round",
                        "index",
                        "seed",
                        "sampling_params",
                        "generated_text",
                        "num_generated_tokens",
                        "num_input_tokens",
                        "__inference_error__",
                    )
                },
                preprocess_map_kwargs={"max_retries": TASK_RETRIES},
                postprocess_map_kwargs={"max_retries": TASK_RETRIES},
            )
            for name in processor.list_stage_names():  # engine actors: bounded restarts, not Ray Data's endless ones
                kwargs = processor.get_stage_by_name(name).map_batches_kwargs
                kwargs.update(max_restarts=TASK_RETRIES, max_task_retries=TASK_RETRIES)
            with remote_args_allowed():
                outputs = processor(ray.data.from_items(rows))
            started = time.monotonic()
            for row in outputs.iter_rows():
                result = result_from_row(row, time.monotonic() - started)
                loop.call_soon_threadsafe(queue.put_nowait, result)
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop and raised there
            loop.call_soon_threadsafe(queue.put_nowait, exc)
