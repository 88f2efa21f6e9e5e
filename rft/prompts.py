"""Prompts with verifiable answers: read JSONL/Parquet, validate, and build the messages to send.

A prompt row has ``id``; ``messages`` (OpenAI chat format) or ``question`` (a string); optional
``images`` (local paths, relative to the prompts file); ``answer`` (the ground truth); ``task``
(which verifier: ``math``, ``numeric``, ``exact``, ``choice``, ``count``, ``bbox``, ``json``,
``code``); optional ``verify`` (verifier options) and ``metadata``. Other fields go to metadata.

Images are checked (decoded, size read) when prompts load, sent to the server as base64 data
URLs inside OpenAI content parts, and written to the SFT output as ``file://`` references. A row
that cannot be used (missing field, duplicate id, unknown task, missing or broken image, a remote
URL) becomes an ``InvalidPrompt`` with its reason; the run goes on without it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import BadMedia, ConfigError
from fusionforge.pipelines.core.images import inspect_image
from fusionforge.pipelines.core.io import strip_compression
from fusionforge.pipelines.readers.base import InputFile
from fusionforge.pipelines.readers.guard import reason_for
from fusionforge.pipelines.readers.rows import FILE_POSITION, Failure, iter_json_values, iter_parquet_rows
from fusionforge.rft.verifiers import TASKS

KNOWN_FIELDS = {"id", "messages", "question", "images", "answer", "task", "verify", "metadata"}
_MIME = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
}


@dataclass(frozen=True)
class Prompt:
    """One usable prompt; ``messages`` refer to images by absolute local path."""

    id: str
    messages: list[dict[str, Any]]
    answer: Any
    task: str
    verify: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    images: tuple[str, ...] = ()
    image_sizes: tuple[tuple[int, int], ...] = ()

    def request_messages(self, system_prompt: str | None = None) -> list[dict[str, Any]]:
        """The messages to send: local images inlined as base64 data URLs."""
        return [_map_images(m, _data_url) for m in self.with_system(system_prompt)]

    def sft_messages(self, system_prompt: str | None = None) -> list[dict[str, Any]]:
        """The messages for SFT output: local images as ``file://`` references."""
        return [_map_images(m, lambda p: Path(p).as_uri()) for m in self.with_system(system_prompt)]

    def with_system(self, system_prompt: str | None) -> list[dict[str, Any]]:
        if system_prompt and not any(m.get("role") == "system" for m in self.messages):
            return [{"role": "system", "content": system_prompt}, *self.messages]
        return list(self.messages)

    def verify_options(self) -> dict[str, Any]:
        """Verifier options, with the image size filled in for ``bbox`` prompts that have one image."""
        options = dict(self.verify)
        if self.task == "bbox" and "image_size" not in options and len(self.image_sizes) == 1:
            options["image_size"] = list(self.image_sizes[0])
        return options


@dataclass(frozen=True)
class InvalidPrompt:
    """A row that could not be used: its id (or file:line) and why."""

    id: str
    reason: str


def _map_images(message: dict[str, Any], to_url) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return dict(message)
    parts = []
    for part in content:
        if part.get("type") == "image_url" and not part["image_url"]["url"].startswith("data:"):
            part = {"type": "image_url", "image_url": {**part["image_url"], "url": to_url(part["image_url"]["url"])}}
        parts.append(part)
    return {**message, "content": parts}


def _data_url(path: str) -> str:
    data = Path(path).read_bytes()
    fmt = inspect_image(data, decode=False).format
    return f"data:{_MIME.get(fmt, 'application/octet-stream')};base64,{base64.b64encode(data).decode('ascii')}"


def read_rows(path: str | Path) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """``(where, row, error)`` for every row of a JSONL (maybe compressed) or Parquet file.

    The shared readers give every line that cannot be read its reason (invalid encoding, malformed
    JSON, nesting too deep, a number too large, over the record cap) and a damaged file one
    ``unreadable_file`` error after the rows before the damage, so one bad line never costs the rest.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"prompts file {path} does not exist")
    file = InputFile(str(path), path.name, "prompts", "text")
    if strip_compression(path.name).lower().endswith(".parquet"):
        for number, row in iter_parquet_rows(file):
            where = f"{path.name}:row {number}" if number != FILE_POSITION else path.name
            yield (where, row, None) if isinstance(row, dict) else (where, None, row)
        return
    for number, value in iter_json_values(file):
        where = f"{path.name}:{number}" if number != FILE_POSITION else path.name
        if isinstance(value, Failure):
            yield where, None, value.reason
        elif isinstance(value, dict):
            yield where, value, None
        else:
            yield where, None, "not_an_object: a prompt line must be a JSON object"


def load_prompts(path: str | Path, task_override: str | None = None) -> tuple[list[Prompt], list[InvalidPrompt]]:
    """Every row of ``path`` as a ``Prompt`` or an ``InvalidPrompt``; ``task_override`` forces one verifier."""
    if task_override is not None and task_override not in TASKS:
        raise ConfigError(f"unknown verifier {task_override!r}; choose one of: auto, {', '.join(TASKS)}")
    base = Path(path).resolve().parent
    prompts: list[Prompt] = []
    invalid: list[InvalidPrompt] = []
    seen: set[str] = set()
    for where, row, error in read_rows(path):
        if error is not None:
            invalid.append(InvalidPrompt(where, error))
            continue
        prompt_id = None
        try:
            raw_id = row.get("id")
            prompt_id = str(raw_id) if raw_id is not None and str(raw_id).strip() else None
            if prompt_id is None:
                raise _Invalid("missing_id: every prompt needs an id")
            if prompt_id in seen:
                raise _Invalid(f"duplicate_id: {prompt_id!r} appears more than once")
            prompt = _build(prompt_id, row, base, task_override)
        except _Invalid as exc:
            invalid.append(InvalidPrompt(prompt_id if prompt_id and prompt_id not in seen else where, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - a row of an unexpected shape is that row's failure
            invalid.append(InvalidPrompt(prompt_id if prompt_id and prompt_id not in seen else where, reason_for(exc)))
            continue
        seen.add(prompt_id)
        prompts.append(prompt)
    return prompts, invalid


class _Invalid(ValueError):
    pass


def _build(prompt_id: str, row: dict[str, Any], base: Path, task_override: str | None) -> Prompt:
    task = task_override or row.get("task")
    if task not in TASKS:
        raise _Invalid(f"unknown_task: {task!r} (known: {', '.join(TASKS)}; or pass --verifier NAME)")
    if "answer" not in row or (row["answer"] is None and task != "json"):
        raise _Invalid("missing_answer: the ground-truth 'answer' is required")
    images = [_resolve(p, base) for p in (row.get("images") or [])]
    if row.get("messages") is not None:
        messages = _check_messages(row["messages"], base)
        if images:
            messages = _attach(messages, images)
    elif isinstance(row.get("question"), str) and row["question"].strip():
        parts = [{"type": "image_url", "image_url": {"url": p}} for p in images]
        content = [*parts, {"type": "text", "text": row["question"]}] if parts else row["question"]
        messages = [{"role": "user", "content": content}]
    else:
        raise _Invalid("missing_prompt: give 'messages' (a list) or 'question' (a non-empty string)")
    paths = tuple(
        part["image_url"]["url"]
        for m in messages
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if part.get("type") == "image_url" and not part["image_url"]["url"].startswith("data:")
    )
    sizes = tuple(_image_size(p) for p in paths)
    verify = row.get("verify") or {}
    metadata = dict(row.get("metadata") or {})
    metadata.update({k: v for k, v in row.items() if k not in KNOWN_FIELDS})
    if not isinstance(verify, dict):
        raise _Invalid("bad_verify: 'verify' must be an object of verifier options")
    return Prompt(prompt_id, messages, row["answer"], task, verify, metadata, paths, sizes)


def _resolve(path: Any, base: Path) -> str:
    if not isinstance(path, str) or not path:
        raise _Invalid(f"bad_image: {path!r} is not a path")
    if path.startswith("file://"):
        path = path[len("file://") :]
    if "://" in path:
        raise _Invalid(f"remote_image: {path} (fusionforge never downloads; fetch it and give a local path)")
    resolved = (base / path).resolve()
    if not resolved.is_file():
        raise _Invalid(f"missing_image: {resolved}")
    return str(resolved)


def _image_size(path: str) -> tuple[int, int]:
    try:
        info = inspect_image(Path(path).read_bytes())
    except BadMedia as exc:
        raise _Invalid(f"bad_image: {path}: {exc}") from exc
    return info.width, info.height


def _check_messages(messages: Any, base: Path) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _Invalid("bad_messages: 'messages' must be a non-empty list")
    checked = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool"):
            raise _Invalid(f"bad_messages: {str(message)[:80]} needs a role (system, user, assistant)")
        content = message.get("content")
        if isinstance(content, list):
            content = [_check_part(part, base) for part in content]
        elif not isinstance(content, str):
            raise _Invalid("bad_messages: content must be a string or a list of parts")
        checked.append({**message, "content": content})
    if checked[-1]["role"] != "user":
        raise _Invalid("bad_messages: the last message must be the user's")
    return checked


def _check_part(part: Any, base: Path) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _Invalid("bad_messages: a content part must be an object")
    if part.get("type") == "image":  # Hugging Face chat-template form
        return {"type": "image_url", "image_url": {"url": _resolve(part.get("image") or part.get("url"), base)}}
    if part.get("type") == "image_url":
        url = (part.get("image_url") or {}).get("url")
        if isinstance(url, str) and url.startswith("data:"):
            return part
        return {"type": "image_url", "image_url": {**part["image_url"], "url": _resolve(url, base)}}
    return part


def _attach(messages: list[dict[str, Any]], images: list[str]) -> list[dict[str, Any]]:
    """Put the row's ``images`` in front of the first user message's text."""
    out, done = [], False
    for message in messages:
        if message["role"] == "user" and not done:
            content = message["content"]
            text = [{"type": "text", "text": content}] if isinstance(content, str) else content
            message = {**message, "content": [*({"type": "image_url", "image_url": {"url": p}} for p in images), *text]}
            done = True
        out.append(message)
    return out


def file_digest(path: str | Path) -> str:
    """sha256 of a file (the prompts' fingerprint for resume)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
