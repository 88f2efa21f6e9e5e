"""The canonical conversation every SFT reader produces, and its OpenAI-messages form on the way out.

One form for OpenAI, ShareGPT and Alpaca inputs: an optional system prompt, the turns, the tool
definitions, tool calls with *parsed* JSON arguments (a parse failure is kept with its reason, so
validation can reject the sample rather than the reader losing it), tool results linked to their
call by id, and source metadata. Every content field is plain text: vision parts never get this far.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

ROLES = ("user", "assistant", "tool")


@dataclass
class ToolCall:
    """One function call an assistant turn makes."""

    id: str
    name: str
    arguments: Any = None  # the parsed JSON value of the arguments
    arguments_error: str | None = None  # set when the raw arguments are not valid JSON
    raw_arguments: str | None = None  # the raw text, kept only when it did not parse


@dataclass
class Message:
    """A turn: ``user``, ``assistant`` or ``tool`` (a mid-conversation ``system`` is kept for validation)."""

    role: str
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None  # tool turns: the call this result answers
    name: str | None = None  # tool turns: the tool's name, when the input gave it


@dataclass
class ToolDef:
    """A tool the assistant may call; ``parameters`` is its JSON schema (None: unconstrained)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None


@dataclass
class Conversation:
    """A chat sample in canonical form; ``meta`` holds where it came from and what was done to it."""

    messages: list[Message]
    system: str | None = None
    tools: list[ToolDef] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_call_count(self) -> int:
        return sum(len(m.tool_calls) for m in self.messages)

    def texts(self, roles: tuple[str, ...] = ("user",)) -> list[str]:
        """The content of every turn whose role is in ``roles`` (``"system"`` adds the system prompt)."""
        out = [self.system] if "system" in roles and self.system else []
        return out + [m.content for m in self.messages if m.role in roles and m.content]


def to_dict(conv: Conversation) -> dict[str, Any]:
    """A JSON-able dict (what travels between stages and into the intermediate parts)."""
    return {
        "system": conv.system,
        "messages": [_message_dict(m) for m in conv.messages],
        "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in conv.tools],
        "meta": conv.meta,
    }


def _message_dict(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{k: v for k, v in vars(c).items() if v is not None} for c in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        out["name"] = m.name
    return out


def from_dict(data: dict[str, Any]) -> Conversation:
    """The inverse of ``to_dict``."""
    messages = [
        Message(
            role=m["role"],
            content=m.get("content", ""),
            tool_call_id=m.get("tool_call_id"),
            name=m.get("name"),
            tool_calls=[ToolCall(**c) for c in m.get("tool_calls", [])],
        )
        for m in data["messages"]
    ]
    tools = [ToolDef(t["name"], t.get("description") or "", t.get("parameters")) for t in data.get("tools", [])]
    return Conversation(messages=messages, system=data.get("system"), tools=tools, meta=dict(data.get("meta") or {}))


def dumps(conv: Conversation) -> str:
    return json.dumps(to_dict(conv), ensure_ascii=False, sort_keys=True)


def loads(text: str) -> Conversation:
    return from_dict(json.loads(text))


def openai_messages(conv: Conversation, arguments_as_text: bool = True) -> list[dict[str, Any]]:
    """OpenAI chat messages; ``arguments_as_text=False`` keeps arguments as objects (what HF chat templates expect)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": conv.system}] if conv.system is not None else []
    for m in conv.messages:
        message: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            message["content"] = m.content or None
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": _arguments(c, arguments_as_text)},
                }
                for c in m.tool_calls
            ]
        if m.role == "tool":
            message["tool_call_id"] = m.tool_call_id
            if m.name:
                message["name"] = m.name
        out.append(message)
    return out


def _arguments(call: ToolCall, as_text: bool) -> Any:
    if call.raw_arguments is not None:
        return call.raw_arguments
    return json.dumps(call.arguments, ensure_ascii=False) if as_text else call.arguments


def openai_tools(conv: Conversation) -> list[dict[str, Any]]:
    """Tool definitions in OpenAI's ``tools`` form."""
    tools = []
    for t in conv.tools:
        function: dict[str, Any] = {"name": t.name, "description": t.description}
        if t.parameters is not None:
            function["parameters"] = t.parameters
        tools.append({"type": "function", "function": function})
    return tools


def conversation_hash(conv: Conversation) -> str:
    """sha256 over the content (system, turns, tools); metadata and ids do not count."""
    body = {"messages": openai_messages(conv), "tools": openai_tools(conv)}
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def output_row(record_id: str, source: str, conv: Conversation) -> dict[str, Any]:
    """One line of the OpenAI-messages JSONL output (``id``, ``source`` and ``meta`` are extra keys trainers ignore)."""
    row: dict[str, Any] = {"id": record_id, "messages": openai_messages(conv)}
    if conv.tools:
        row["tools"] = openai_tools(conv)
    row["source"] = source
    row["meta"] = conv.meta
    return row


FUNCTION_TYPE = pa.struct([("name", pa.string()), ("arguments", pa.large_string())])
TOOL_CALL_TYPE = pa.struct([("id", pa.string()), ("type", pa.string()), ("function", FUNCTION_TYPE)])
MESSAGE_TYPE = pa.struct(
    [
        ("role", pa.string()),
        ("content", pa.large_string()),
        ("tool_calls", pa.list_(TOOL_CALL_TYPE)),
        ("tool_call_id", pa.string()),
        ("name", pa.string()),
    ]
)
OUTPUT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("tools", pa.large_string()),  # OpenAI ``tools`` as JSON: arbitrary JSON schemas do not fit one Arrow type
        ("n_tokens", pa.int64()),
        ("n_tool_calls", pa.int64()),
        ("repeat", pa.int64()),  # 0 for a conversation's first row; the mixture may repeat a source's rows
        ("meta", pa.large_string()),
    ]
)


def parquet_row(row: dict[str, Any], n_tokens: int, repeat: int) -> dict[str, Any]:
    """An ``OUTPUT_SCHEMA`` row from an ``output_row`` dict."""
    messages = [
        {
            "role": m["role"],
            "content": m.get("content"),
            "tool_calls": m.get("tool_calls"),
            "tool_call_id": m.get("tool_call_id"),
            "name": m.get("name"),
        }
        for m in row["messages"]
    ]
    return {
        "id": row["id"],
        "source": row["source"],
        "messages": messages,
        "tools": json.dumps(row["tools"], ensure_ascii=False) if "tools" in row else None,
        "n_tokens": n_tokens,
        "n_tool_calls": sum(len(m.get("tool_calls") or []) for m in row["messages"]),
        "repeat": repeat,
        "meta": json.dumps(row["meta"], ensure_ascii=False, sort_keys=True),
    }
