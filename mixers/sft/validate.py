"""Is a canonical conversation a trainable SFT sample? The first problem found is the reason.

Checks, in order: there are turns; roles are known and in a valid order (system first only, user
opens, user -> assistant, assistant -> user, or -> tool results when it called tools, tool ->
tool or assistant); no empty user or assistant turn; every tool call has unique id, JSON-object
arguments, names a defined tool and matches that tool's JSON schema (when tools are given; with the
``lenient`` schema dialect the schema is first mapped to JSON Schema by ``tool_schema.lenient_schema``,
as public tool-calling sets write it); every tool result answers an earlier, still-open call id, and
no call goes unanswered; the conversation ends with an assistant turn; and the token count is within
``max_tokens``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from fusionforge.mixers.sft.schema import ROLES, Conversation, Message
from fusionforge.mixers.sft.tool_schema import lenient_schema


def validate(
    conv: Conversation, n_tokens: int | None = None, max_tokens: int | None = None, schema_dialect: str = "lenient"
) -> str | None:
    """``None`` when the sample is valid, else ``"reason: detail"``."""
    if not conv.messages:
        return "empty_conversation: no user or assistant turns"
    for check in (_roles, _contents, lambda c: _tool_calls(c, schema_dialect), _tool_results, _ending):
        problem = check(conv)
        if problem:
            return problem
    if max_tokens is not None and n_tokens is not None and n_tokens > max_tokens:
        return f"too_long: {n_tokens} tokens > --max-tokens {max_tokens}"
    return None


def _roles(conv: Conversation) -> str | None:
    previous: Message | None = None
    for turn, message in enumerate(conv.messages, start=1):
        role = message.role
        if role == "system":
            return f"role_order: a system message at turn {turn} (only the first message may be a system prompt)"
        if role not in ROLES:
            return f"unknown_role: {role!r} at turn {turn}"
        expected = _allowed_after(previous)
        if role not in expected:
            after = f"after {previous.role}" if previous else "as the first turn"
            if previous is not None and previous.role == "assistant" and previous.tool_calls:
                after = "after an assistant turn that called tools"
            return f"role_order: {role} {after} at turn {turn} (expected {' or '.join(expected)})"
        previous = message
    return None


def _allowed_after(previous: Message | None) -> tuple[str, ...]:
    if previous is None:
        return ("user",)
    if previous.role == "user":
        return ("assistant",)
    if previous.role == "assistant":
        return ("tool",) if previous.tool_calls else ("user",)
    return ("tool", "assistant")


def _contents(conv: Conversation) -> str | None:
    for turn, message in enumerate(conv.messages, start=1):
        if message.role == "user" and not message.content.strip():
            return f"empty_user_turn: turn {turn}"
        if message.role == "assistant" and not message.content.strip() and not message.tool_calls:
            return f"empty_assistant_turn: turn {turn}"
    return None


def tool_schema_mappings(conv: Conversation) -> list[str]:
    """What the lenient dialect rewrote in this conversation's tool schemas (``"float->number"``, ...)."""
    return [m for tool in conv.tools if tool.parameters is not None for m in lenient_schema(tool.parameters)[1]]


def _tool_calls(conv: Conversation, schema_dialect: str) -> str | None:
    tools = {t.name: t for t in conv.tools}
    seen: set[str] = set()
    for turn, message in enumerate(conv.messages, start=1):
        for call in message.tool_calls:
            where = f"{call.name or '?'} (call {call.id}, turn {turn})"
            if call.id in seen:
                return f"duplicate_tool_call_id: {call.id} at turn {turn}"
            seen.add(call.id)
            if not call.name:
                return f"tool_call_without_name: {where}{': ' + call.arguments_error if call.arguments_error else ''}"
            if call.arguments_error is not None:
                return f"tool_arguments_not_json: {where}: {call.arguments_error}"
            if not isinstance(call.arguments, dict):
                return f"tool_arguments_not_object: {where}: got {type(call.arguments).__name__}"
            if not tools:
                continue
            if call.name not in tools:
                return f"unknown_tool: {where}; defined: {', '.join(sorted(tools))}"
            schema = tools[call.name].parameters
            if schema is not None and schema_dialect == "lenient":
                schema = lenient_schema(schema)[0]
            if schema is not None:
                problem = schema_problem(json.dumps(schema, sort_keys=True), call.arguments)
                if problem:
                    return f"{problem[0]}: {where}: {problem[1]}"
    return None


def schema_problem(schema_json: str, arguments: Any) -> tuple[str, str] | None:
    """``(reason, detail)`` when ``arguments`` do not match the schema, or the schema itself is broken."""
    from jsonschema.exceptions import best_match

    validator = _validator(schema_json)
    if isinstance(validator, str):
        return "bad_tool_schema", validator
    try:
        error = best_match(validator.iter_errors(arguments))
    except Exception as exc:  # noqa: BLE001 - a schema that cannot be applied (an unresolvable $ref) is broken
        return "bad_tool_schema", f"the tool's JSON schema cannot be applied: {type(exc).__name__}: {exc}"[:300]
    if error is None:
        return None
    path = "/".join(str(p) for p in error.absolute_path)
    return "tool_arguments_schema", f"{error.message}{f' (at {path})' if path else ''}"


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Any:
    """A compiled validator for a tool schema (the same tools recur across a set), or why it is broken."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    schema = json.loads(schema_json)
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        return f"the tool's JSON schema is invalid: {exc.message}"
    return cls(schema)


def _tool_results(conv: Conversation) -> str | None:
    issued: set[str] = set()
    open_calls: dict[str, int] = {}
    for turn, message in enumerate(conv.messages, start=1):
        if message.role == "assistant":
            if open_calls:
                call_id, at = next(iter(open_calls.items()))
                return f"unanswered_tool_call: {call_id} (turn {at}) has no tool result before turn {turn}"
            for call in message.tool_calls:
                issued.add(call.id)
                open_calls[call.id] = turn
        elif message.role == "tool":
            call_id = message.tool_call_id
            if not call_id:
                return f"tool_result_without_call_id: turn {turn}"
            if call_id not in issued:
                return f"tool_result_unknown_call_id: {call_id} at turn {turn} answers no earlier call"
            if call_id not in open_calls:
                return f"tool_result_duplicate: {call_id} answered again at turn {turn}"
            del open_calls[call_id]
    if open_calls:
        call_id, at = next(iter(open_calls.items()))
        return f"unanswered_tool_call: {call_id} (turn {at}) has no tool result"
    return None


def _ending(conv: Conversation) -> str | None:
    last = conv.messages[-1]
    if last.role != "assistant":
        return f"not_ending_with_assistant: the last turn is {last.role}"
    return None
