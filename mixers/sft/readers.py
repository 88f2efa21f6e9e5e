"""OpenAI messages, ShareGPT and Alpaca rows -> the canonical ``Conversation``.

The format is detected per row (``messages`` / ``conversations`` / ``instruction`` + ``output``).
Readers keep everything a later check needs: unparseable tool arguments are kept with their error,
unknown roles stay as they are, and media content parts are taken out of the text but reported,
so the vision policy (reject or strip) and validation decide, each with a reason. ShareGPT has no
call ids: its calls get ``call_{turn}_{k}`` and each observation answers the oldest pending call.
"""

from __future__ import annotations

import json
from typing import Any

from fusionforge.mixers.sft.schema import Conversation, Message, ToolCall, ToolDef
from fusionforge.mixers.sft.vision import MEDIA_PART_TYPES, MEDIA_ROW_FIELDS, TEXT_PART_TYPES
from fusionforge.pipelines.core.errors import BadRecord
from fusionforge.pipelines.readers.base import split_meta
from fusionforge.pipelines.readers.guard import reason_for

FORMATS = ("openai", "sharegpt", "alpaca")
ROLE_ALIASES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "tool": "tool",
    "observation": "tool",
    "function": "tool",
    "ipython": "tool",
    "function_response": "tool",
    "system": "system",
    "developer": "system",
}
_CONSUMED = {
    "openai": {"messages", "tools", "functions"},
    "sharegpt": {"conversations", "tools", "system"},
    "alpaca": {"instruction", "input", "output", "system", "history"},
}


def detect_format(row: dict[str, Any]) -> str:
    """``openai``, ``sharegpt`` or ``alpaca`` from the row's fields; a ``BadRecord`` otherwise."""
    if "messages" in row:
        return "openai"
    if "conversations" in row:
        return "sharegpt"
    if "instruction" in row and "output" in row:
        return "alpaca"
    fields = ", ".join(sorted(row)[:8])
    raise BadRecord(f"unknown_format: expected 'messages', 'conversations' or 'instruction'+'output', got {fields}")


def parse_row(row: dict[str, Any], fmt: str | None = None) -> tuple[Conversation, list[str]]:
    """The canonical conversation and the media parts found (``"image_url part in turn 2"``, ...).

    A row that cannot be read raises ``BadRecord`` with a reason, whatever its shape: a field of a
    type no check below expected (a list where a string belongs) is ``wrong_type``.
    """
    try:
        return _parse_row(row, fmt)
    except BadRecord:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        raise BadRecord(reason_for(exc)) from exc


def _parse_row(row: dict[str, Any], fmt: str | None) -> tuple[Conversation, list[str]]:
    fmt = fmt or detect_format(row)
    media: list[str] = [f"row field {key!r}" for key in MEDIA_ROW_FIELDS if row.get(key)]
    if fmt == "openai":
        conv = _openai(row, media)
    elif fmt == "sharegpt":
        conv = _sharegpt(row, media)
    elif fmt == "alpaca":
        conv = _alpaca(row)
    else:
        raise BadRecord(f"unknown_format: {fmt!r} (use one of {', '.join(FORMATS)})")
    _link_tool_results(conv.messages)
    extra = split_meta(row, {*_CONSUMED[fmt], *MEDIA_ROW_FIELDS, "id"})
    conv.meta = {"format": fmt, **({"extra": extra} if extra else {})}
    return conv, media


def _openai(row: dict[str, Any], media: list[str]) -> Conversation:
    raw = row["messages"]
    if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
        raise BadRecord("bad_messages: 'messages' must be a list of objects")
    if raw and "from" in raw[0] and "role" not in raw[0]:
        return _sharegpt({**row, "conversations": raw}, media)
    conv = Conversation(messages=[], tools=_tools(row.get("tools"), row.get("functions")))
    systems: list[str] = []
    for turn, m in enumerate(raw, start=1):
        role = ROLE_ALIASES.get(str(m.get("role")), str(m.get("role")))
        content = _content(m.get("content"), media, turn)
        if role == "system" and not conv.messages:
            systems.append(content)
            continue
        message = Message(role=role, content=content)
        if role == "assistant":
            calls = m.get("tool_calls") or []
            if not isinstance(calls, list):
                raise BadRecord(f"bad_tool_calls: 'tool_calls' must be a list (turn {turn})")
            message.tool_calls = [_openai_call(c, turn, k) for k, c in enumerate(calls)]
            if isinstance(m.get("function_call"), dict):  # the legacy single-call field
                message.tool_calls.append(_openai_call({"function": m["function_call"]}, turn, len(message.tool_calls)))
        elif role == "tool":
            message.tool_call_id = _opt_str(m.get("tool_call_id"))
            message.name = _opt_str(m.get("name"))
        conv.messages.append(message)
    conv.system = "\n\n".join(systems) if systems else None
    return conv


def _openai_call(call: Any, turn: int, k: int) -> ToolCall:
    if not isinstance(call, dict):
        return ToolCall(id=f"call_{turn}_{k}", name="", arguments_error="tool call is not an object")
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    call_id = _opt_str(call.get("id")) or f"call_{turn}_{k}"
    return _tool_call(call_id, function.get("name"), function.get("arguments"))


def _sharegpt(row: dict[str, Any], media: list[str]) -> Conversation:
    raw = row["conversations"]
    if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
        raise BadRecord("bad_conversations: 'conversations' must be a list of objects")
    system = row.get("system") if isinstance(row.get("system"), str) and row.get("system") else None
    conv = Conversation(messages=[], system=system, tools=_tools(row.get("tools"), None))
    for turn, m in enumerate(raw, start=1):
        speaker = str(m.get("from", m.get("role")))
        content = _content(m.get("value", m.get("content")), media, turn)
        if speaker == "function_call":
            conv.messages.append(Message(role="assistant", tool_calls=_sharegpt_calls(content, turn)))
            continue
        role = ROLE_ALIASES.get(speaker, speaker)
        if role == "system" and not conv.messages:
            conv.system = "\n\n".join(filter(None, [conv.system, content]))
            continue
        name = _opt_str(m.get("name")) if role == "tool" else None
        conv.messages.append(Message(role=role, content=content, name=name))
    return conv


def _sharegpt_calls(text: str, turn: int) -> list[ToolCall]:
    """A ``function_call`` turn: ``{"name", "arguments"}`` or a list of them, as JSON text."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # not JSON, nested too deep, or a number too large
        return [
            ToolCall(
                id=f"call_{turn}_0",
                name="",
                arguments_error=f"function_call turn is not JSON: {getattr(exc, 'msg', type(exc).__name__)}",
                raw_arguments=text,
            )
        ]
    calls = value if isinstance(value, list) else [value]
    out = []
    for k, call in enumerate(calls):
        if not isinstance(call, dict):
            out.append(ToolCall(id=f"call_{turn}_{k}", name="", arguments_error="function call is not an object"))
        else:
            out.append(_tool_call(f"call_{turn}_{k}", call.get("name"), call.get("arguments", call.get("parameters"))))
    return out


def _alpaca(row: dict[str, Any]) -> Conversation:
    fields = {k: row.get(k) for k in ("instruction", "input", "output", "system")}
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise BadRecord(f"bad_field: {key!r} must be a string, got {type(value).__name__}")
    messages: list[Message] = []
    if not isinstance(row.get("history") or [], list):
        raise BadRecord("bad_field: 'history' must be a list of [user, assistant] string pairs")
    for pair in row.get("history") or []:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise BadRecord("bad_field: 'history' must be a list of [user, assistant] string pairs")
        messages += [Message("user", pair[0]), Message("assistant", pair[1])]
    prompt = "\n\n".join(t for t in (fields["instruction"], fields["input"]) if t)
    messages += [Message("user", prompt), Message("assistant", fields["output"] or "")]
    return Conversation(messages=messages, system=fields["system"] or None)


def _tools(tools: Any, functions: Any) -> list[ToolDef]:
    """OpenAI ``tools`` (``{"type": "function", "function": {...}}``), flat definitions, or a JSON string of either."""
    out = []
    for raw in (tools, functions):
        if isinstance(raw, str) and raw.strip():
            try:
                raw = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise BadRecord(f"bad_tools: the tools field is not JSON ({getattr(exc, 'msg', exc)})") from exc
        if raw in (None, "", []):
            continue
        if not isinstance(raw, list):
            raise BadRecord("bad_tools: tools must be a list of tool definitions")
        for item in raw:
            spec = item.get("function") if isinstance(item, dict) and isinstance(item.get("function"), dict) else item
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise BadRecord("bad_tools: every tool needs a string 'name'")
            parameters = spec.get("parameters")
            if parameters is not None and not isinstance(parameters, dict):
                raise BadRecord(f"bad_tools: the parameters of {spec['name']!r} must be a JSON schema object")
            out.append(ToolDef(spec["name"], str(spec.get("description") or ""), parameters))
    return out


def _tool_call(call_id: str, name: Any, arguments: Any) -> ToolCall:
    name = name if isinstance(name, str) else ""
    if arguments is None:
        return ToolCall(call_id, name, arguments_error="no arguments")
    if isinstance(arguments, str):
        try:
            return ToolCall(call_id, name, arguments=json.loads(arguments))
        except json.JSONDecodeError as exc:
            return ToolCall(call_id, name, arguments_error=f"{exc.msg} at column {exc.colno}", raw_arguments=arguments)
        except (ValueError, RecursionError) as exc:  # nested too deep, or a number too large
            return ToolCall(
                call_id, name, arguments_error=f"{type(exc).__name__}: {exc}"[:200], raw_arguments=arguments
            )
    return ToolCall(call_id, name, arguments=arguments)


def _content(value: Any, media: list[str], turn: int) -> str:
    """Text of a content field; media parts are left out and reported in ``media``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    parts = value if isinstance(value, list) else [value]
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            kind = part.get("type") or next((k for k in part if k in MEDIA_PART_TYPES), "text")
            if not isinstance(kind, str):
                raise BadRecord(f"bad_content: a content part's type must be a string (turn {turn})")
            if kind in TEXT_PART_TYPES or kind == "refusal":
                texts.append(str(part.get("text") or part.get("refusal") or ""))
            else:
                media.append(f"{kind} part in turn {turn}")
        else:
            raise BadRecord(f"bad_content: content parts must be strings or objects (turn {turn})")
    return "\n".join(texts)


def _link_tool_results(messages: list[Message]) -> None:
    """Give tool results without a call id the oldest pending call (of the same name, when named)."""
    pending: list[ToolCall] = []
    for message in messages:
        if message.role == "assistant":
            pending = list(message.tool_calls)
        elif message.role == "tool" and message.tool_call_id is not None:
            pending = [c for c in pending if c.id != message.tool_call_id]
        elif message.role == "tool" and pending:
            match = next((c for c in pending if not message.name or c.name == message.name), None)
            if match is not None:
                message.tool_call_id = match.id
                pending.remove(match)


def _opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
