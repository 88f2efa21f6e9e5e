"""Token counts of whole conversations, by the real tokenizer when the user gives one.

``--tokenizer PATH`` is a ``tokenizer.json`` file, a tiktoken file or a folder. A folder with a
chat template is counted the way a trainer sees it (``apply_chat_template`` with the tools);
otherwise the conversation is rendered in ChatML (tools in the system turn, calls in
``<tool_call>`` tags) and counted by the project's shared ``mixers.tokens.text.TextCounter``.
Without a tokenizer the count is that module's labelled estimate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fusionforge.mixers.sft.schema import Conversation, openai_messages, openai_tools
from fusionforge.mixers.tokens.text import TextCounter
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency


def load_tokenizer(path: str | None) -> tuple[str, Any]:
    """``(method, tokenizer)``: ``chat_template`` (a transformers tokenizer), else the shared ``TextCounter``."""
    if path:
        folder = Path(path).expanduser()
        config = folder / "tokenizer_config.json"
        has_template = folder.is_dir() and (
            (folder / "chat_template.jinja").exists()
            or (config.exists() and "chat_template" in config.read_text(encoding="utf-8"))
        )
        if has_template:
            try:
                from transformers import AutoTokenizer
            except ImportError as exc:
                raise MissingDependency("transformers", "local-model") from exc
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load the tokenizer in {folder}: {exc}") from exc
            if tokenizer.chat_template:
                return "chat_template", tokenizer
    counter = TextCounter(path)
    return counter.method, counter


class TokenCounter:
    """Counts conversations; ``method`` says how (it goes into the report)."""

    def __init__(self, path: str | None = None) -> None:
        self.method, self._tokenizer = load_tokenizer(path)
        self.path = path

    def count(self, conversations: list[Conversation]) -> list[tuple[int | None, str | None]]:
        """``(tokens, None)`` per conversation, or ``(None, problem)`` when its chat template cannot render it."""
        if self.method == "chat_template":
            return [self._templated(c) for c in conversations]
        return [(n, None) for n in self._tokenizer.count_batch([render_chatml(c) for c in conversations])]

    def _templated(self, conv: Conversation) -> tuple[int | None, str | None]:
        tools = openai_tools(conv) or None
        try:
            ids = self._tokenizer.apply_chat_template(
                openai_messages(conv, arguments_as_text=False), tools=tools, tokenize=True, return_dict=False
            )
        except Exception as exc:  # noqa: BLE001 - jinja raises anything a template author wrote
            return None, f"chat_template_error: {type(exc).__name__}: {str(exc)[:200]}"
        return len(ids), None


def render_chatml(conv: Conversation) -> str:
    """ChatML text of a conversation (the rendering used when the tokenizer has no template of its own)."""
    system = conv.system or ""
    if conv.tools:
        system += "\n\n# Tools\n" + "\n".join(json.dumps(t, ensure_ascii=False) for t in openai_tools(conv))
    out = [f"<|im_start|>system\n{system.strip()}<|im_end|>\n"] if system else []
    for m in openai_messages(conv):
        body = m.get("content") or ""
        for call in m.get("tool_calls") or []:
            function = {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}
            body += f"\n<tool_call>\n{json.dumps(function, ensure_ascii=False)}\n</tool_call>"
        out.append(f"<|im_start|>{m['role']}\n{body.strip()}<|im_end|>\n")
    return "".join(out)
