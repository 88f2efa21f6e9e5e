"""An in-process ``transformers`` client: ``generate`` on a small local model, CPU or GPU, no server.

For small models and quick checks; text prompts only (a prompt with images gets an
``unsupported_input`` error per sample, recorded like any other). Each request's samples come
from one ``generate`` call with ``num_return_sequences`` and the first sample's seed, so a rerun
gives the same text. ``extra_body`` entries become ``generate`` keyword arguments (``top_k`` ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import ConfigError, MissingDependency
from fusionforge.rft.clients import Client, SampleRequest, SampleResult


class TransformersClient(Client):
    """A causal LM and its tokenizer (with a chat template) loaded from a local folder."""

    def __init__(self, model_path: str, device: str | None = None) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise MissingDependency("transformers", "local-model") from exc
        if not Path(model_path).is_dir():
            raise ConfigError(f"--model must be a local model folder for the transformers client: {model_path}")
        self.model = str(model_path)
        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.lm = AutoModelForCausalLM.from_pretrained(model_path).to(self.device).eval()

    def identity(self) -> dict[str, Any]:
        return {"client": "transformers", "model": self.model}

    async def generate(self, requests: Iterable[SampleRequest]) -> AsyncIterator[SampleResult]:
        for request in requests:
            for result in await asyncio.to_thread(self._generate, request):
                yield result

    def _generate(self, request: SampleRequest) -> list[SampleResult]:
        started = time.monotonic()
        messages = _text_messages(request.messages)
        if messages is None:
            return [
                SampleResult(
                    request.prompt_id,
                    request.round,
                    i,
                    s,
                    error_kind="unsupported_input",
                    error="unsupported_input: the transformers client takes text prompts only",
                )
                for i, s in zip(request.indices, request.seeds)
            ]
        s = request.sampling
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        prompt_len = inputs["input_ids"].shape[1]
        kwargs: dict[str, Any] = {
            "max_new_tokens": s.max_tokens,
            "num_return_sequences": len(request.indices),
            "do_sample": s.temperature > 0,
            "pad_token_id": self._pad_id(),
        }
        if s.temperature > 0:
            kwargs["temperature"] = s.temperature
            if s.top_p is not None:
                kwargs["top_p"] = s.top_p
        if s.stop:
            kwargs.update(stop_strings=list(s.stop), tokenizer=self.tokenizer)
        kwargs.update(s.extra_body)
        self._torch.manual_seed(request.seeds[0])
        with self._torch.no_grad():
            output = self.lm.generate(**inputs, **kwargs)
        latency = time.monotonic() - started
        eos = _eos_ids(self.lm.generation_config.eos_token_id)
        results = []
        for position, sequence in enumerate(output[:, prompt_len:].tolist()):
            ends = [n for n, token in enumerate(sequence) if token in eos]
            length = ends[0] + 1 if ends else len(sequence)
            text = self.tokenizer.decode(sequence[:length], skip_special_tokens=True)
            results.append(
                SampleResult(
                    request.prompt_id,
                    request.round,
                    request.indices[position],
                    request.seeds[position],
                    text,
                    "stop" if ends or length < s.max_tokens else "length",
                    prompt_len,
                    length,
                    latency,
                )
            )
        return results

    def _pad_id(self) -> int | None:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else next(iter(_eos_ids(self.lm.generation_config.eos_token_id)), None)


def _eos_ids(value: int | list[int] | None) -> set[int]:
    if value is None:
        return set()
    return {value} if isinstance(value, int) else set(value)


def _text_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]] | None:
    """Messages with string content; None when a message carries an image."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            if any(part.get("type") != "text" for part in content):
                return None
            content = "\n".join(part["text"] for part in content)
        out.append({"role": message["role"], "content": content})
    return out
