"""The model client a run asks for by name (``--client``), built from the command line's options.

Kept apart from ``clients.py``: the other clients build on its ``Client``, so choosing among them
there would make each module import the other.
"""

from __future__ import annotations

import json
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.rft.clients import Client, OpenAIClient
from fusionforge.rft.local_client import TransformersClient
from fusionforge.rft.ray_vllm_client import RayVLLMClient

CLIENTS = ("openai", "transformers", "ray-vllm")  # the kinds make_client builds


def make_client(kind: str, model: str, **options: Any) -> Client:
    """Build the client named ``kind`` (``openai``, ``transformers`` or ``ray-vllm``)."""
    if kind == "openai":
        if not options.get("endpoint"):
            raise ConfigError("the openai client needs --endpoint (e.g. http://127.0.0.1:8000/v1)")
        keys = ("api_key", "concurrency", "timeout_s", "max_retries", "n_mode", "seed")
        return OpenAIClient(options["endpoint"], model, **{k: options[k] for k in keys if k in options})
    if kind == "transformers":
        return TransformersClient(model, device=options.get("device"))
    if kind == "ray-vllm":
        try:
            engine_kwargs = json.loads(options.get("engine_kwargs") or "{}")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--engine-kwargs is not valid JSON: {exc}") from exc
        if not isinstance(engine_kwargs, dict):
            raise ConfigError("--engine-kwargs must be a JSON object, e.g. '{\"tensor_parallel_size\": 2}'")
        return RayVLLMClient(
            model,
            engine_kwargs=engine_kwargs,
            concurrency=options.get("engine_concurrency", 1),
            ray_address=options.get("ray_address"),
        )
    raise ConfigError(f"unknown client {kind!r}; use {', '.join(CLIENTS[:-1])} or {CLIENTS[-1]}")
