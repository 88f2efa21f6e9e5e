import json

import pytest

from fusionforge.mixers.sft.readers import parse_row
from fusionforge.mixers.sft.schema import dumps, loads, openai_messages, openai_tools
from fusionforge.mixers.sft.validate import validate
from fusionforge.pipelines.core.errors import BadRecord

ADD_TOOL = {
    "name": "add",
    "description": "Add two numbers.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
}


def reason(row):
    conv, media = parse_row(row)
    assert media == []
    problem = validate(conv)
    return problem.split(":", 1)[0] if problem else None


def test_openai_tool_conversation_round_trips_into_the_canonical_form(chat):
    conv, media = parse_row(chat())
    assert media == [] and validate(conv) is None
    assert conv.system == "You are a weather assistant."
    assert [m.role for m in conv.messages] == ["user", "assistant", "tool", "assistant"]
    call = conv.messages[1].tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call_1", "get_weather", {"city": "Paris", "unit": "celsius"})
    assert conv.messages[2].tool_call_id == "call_1"
    assert conv.tools[0].parameters["required"] == ["city"]
    assert conv.meta["format"] == "openai"
    again = loads(dumps(conv))
    out = openai_messages(again)
    assert out[0] == {"role": "system", "content": "You are a weather assistant."}
    assert json.loads(out[2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert out[3] == {"role": "tool", "content": '{"temp_c": 21, "sky": "clear"}', "tool_call_id": "call_1"}
    assert openai_tools(again)[0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"call_args": '{"city": "Paris", "unit": "celsius"'}, "tool_arguments_not_json"),
        ({"call_args": '{"city": "Paris", "unit": "kelvin"}'}, "tool_arguments_schema"),
        ({"call_args": '{"unit": "celsius"}'}, "tool_arguments_schema"),
        ({"call_args": '["Paris"]'}, "tool_arguments_not_object"),
        ({"result_id": "call_9"}, "tool_result_unknown_call_id"),
    ],
)
def test_invalid_openai_tool_calls_are_rejected_with_their_reason(chat, change, expected):
    assert reason(chat(**change)) == expected


def test_schema_reason_names_the_tool_and_the_field(chat):
    conv, _ = parse_row(chat(call_args='{"city": "Paris", "unit": "kelvin"}'))
    problem = validate(conv)
    assert "get_weather" in problem and "'kelvin' is not one of" in problem and "unit" in problem


def test_structural_problems_in_openai_rows(chat):
    row = chat()
    unknown_tool = json.loads(json.dumps(row))
    unknown_tool["messages"][2]["tool_calls"][0]["function"]["name"] = "get_time"
    assert reason(unknown_tool) == "unknown_tool"
    answered_twice = json.loads(json.dumps(row))
    answered_twice["messages"].insert(4, dict(row["messages"][3]))
    assert reason(answered_twice) == "tool_result_duplicate"
    unanswered = {"messages": row["messages"][:3], "tools": row["tools"]}
    assert reason(unanswered) == "unanswered_tool_call"
    ends_with_tool = {"messages": row["messages"][:4], "tools": row["tools"]}
    assert reason(ends_with_tool) == "not_ending_with_assistant"
    empty = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}
    assert reason(empty) == "empty_assistant_turn"
    two_users = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
        ]
    }
    assert reason(two_users) == "role_order"
    late_system = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "system", "content": "new rules"},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d"},
        ]
    }
    assert reason(late_system) == "role_order"
    odd_role = {"messages": [{"role": "user", "content": "a"}, {"role": "critic", "content": "b"}]}
    assert reason(odd_role) == "unknown_role"


def test_a_broken_tool_schema_is_reported_as_such(chat):
    row = chat()
    row["tools"][0] = json.loads(json.dumps(row["tools"][0]))
    row["tools"][0]["function"]["parameters"] = {"type": "object", "properties": {"city": {"type": 12}}}
    assert reason(row) == "bad_tool_schema"


def test_legacy_function_call_and_function_role_are_linked():
    row = {
        "functions": [ADD_TOOL],
        "messages": [
            {"role": "user", "content": "2+3?"},
            {"role": "assistant", "content": None, "function_call": {"name": "add", "arguments": '{"a": 2, "b": 3}'}},
            {"role": "function", "name": "add", "content": "5"},
            {"role": "assistant", "content": "5"},
        ],
    }
    conv, _ = parse_row(row)
    assert conv.messages[2].role == "tool" and conv.messages[2].tool_call_id == conv.messages[1].tool_calls[0].id
    assert validate(conv) is None


def sharegpt(call_value, observation=True):
    turns = [{"from": "human", "value": "Add 2 and 3."}, {"from": "function_call", "value": call_value}]
    if observation:
        turns.append({"from": "observation", "value": '{"result": 5}'})
    turns.append({"from": "gpt", "value": "2 + 3 = 5."})
    return {"system": "You can add.", "tools": json.dumps([ADD_TOOL]), "conversations": turns}


def test_sharegpt_tool_conversations_valid_and_invalid():
    conv, _ = parse_row(sharegpt(json.dumps({"name": "add", "arguments": {"a": 2, "b": 3}})))
    assert conv.meta["format"] == "sharegpt" and conv.system == "You can add."
    call = conv.messages[1].tool_calls[0]
    assert call.arguments == {"a": 2, "b": 3} and conv.messages[2].tool_call_id == call.id
    assert validate(conv) is None
    assert reason(sharegpt(json.dumps({"name": "add", "arguments": {"a": "two", "b": 3}}))) == "tool_arguments_schema"
    assert reason(sharegpt('{"name": "add", "arguments": {"a": 2')) == "tool_call_without_name"
    assert reason(sharegpt(json.dumps({"name": "mul", "arguments": {"a": 2, "b": 3}}))) == "unknown_tool"
    assert (
        reason(sharegpt(json.dumps({"name": "add", "arguments": {"a": 2, "b": 3}}), observation=False)) == "role_order"
    )


def test_sharegpt_without_tools_and_role_content_variant():
    row = {"conversations": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}]}
    assert reason(row) is None
    assert reason({"conversations": [{"from": "gpt", "value": "I speak first"}]}) == "role_order"


def test_alpaca_rows_with_history_and_input():
    row = {
        "instruction": "Translate to French:",
        "input": "good morning",
        "output": "bonjour",
        "system": "You translate.",
        "history": [["hi", "hello"]],
    }
    conv, _ = parse_row(row)
    assert [m.content for m in conv.messages] == ["hi", "hello", "Translate to French:\n\ngood morning", "bonjour"]
    assert conv.system == "You translate." and validate(conv) is None
    assert reason({"instruction": "Say something", "input": "", "output": ""}) == "empty_assistant_turn"
    with pytest.raises(BadRecord, match="bad_field"):
        parse_row({"instruction": "x", "output": ["not", "text"]})


def test_unknown_rows_and_broken_structures_are_bad_records():
    with pytest.raises(BadRecord, match="unknown_format"):
        parse_row({"text": "a plain document"})
    with pytest.raises(BadRecord, match="bad_messages"):
        parse_row({"messages": "not a list"})
    with pytest.raises(BadRecord, match="bad_tools"):
        parse_row({"tools": "{not json", "messages": []})


def test_length_limit_uses_the_given_count(chat):
    conv, _ = parse_row(chat())
    assert validate(conv, n_tokens=120, max_tokens=100).startswith("too_long: 120 tokens > --max-tokens 100")
    assert validate(conv, n_tokens=100, max_tokens=100) is None


def test_extra_fields_are_kept_as_source_metadata(chat):
    row = {**chat(), "id": "x1", "category": "weather", "lang": "en"}
    conv, _ = parse_row(row)
    assert conv.meta == {"format": "openai", "extra": {"category": "weather", "lang": "en"}}


def test_sft_input_rows_fail_one_by_one_on_bad_bytes_nesting_and_huge_numbers(tmp_path):
    from fusionforge.mixers.sft.parts import RowSource, plan
    from fusionforge.pipelines.core import schema as S

    chat = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})
    lines = [chat.encode()] * 5
    lines[1] = b'{"messages": "caf\xe9"}'
    lines[2] = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    lines[3] = b'{"messages": [], "n": ' + b"1" * 5000 + b"}"
    path = tmp_path / "chats.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    (partition,) = plan([str(path)], 512)
    (table,) = RowSource([partition]).read(partition.index)
    errors = [e.split(":")[1] if e else None for e in table.column(S.ERROR).to_pylist()]
    assert errors == [None, "invalid_encoding", "nesting_too_deep", "number_too_large", None]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"messages": [{"role": "user", "content": [{"type": ["image"]}]}]}, "bad_content"),
        ({"instruction": "add", "output": "5", "history": 5}, "bad_field"),
        ({"messages": [{"role": "user", "content": "hi"}], "tools": "[" * 5000}, "bad_tools"),
    ],
)
def test_chat_rows_of_any_shape_fail_with_a_reason_not_an_exception(row, reason):
    with pytest.raises(BadRecord) as caught:
        parse_row(row)
    assert caught.value.reason.startswith(reason)


def test_huge_numbers_in_tool_arguments_are_an_arguments_error(chat):
    conv, _ = parse_row(chat(call_args='{"a": ' + "1" * 5000 + "}"))
    (call,) = conv.messages[1].tool_calls
    assert call.arguments is None and "digits" in call.arguments_error


def test_a_tool_schema_with_an_unresolvable_ref_is_a_bad_schema_not_a_crash():
    from fusionforge.mixers.sft.validate import schema_problem

    reason, detail = schema_problem(json.dumps({"$ref": "#/nowhere"}), {"a": 1})
    assert reason == "bad_tool_schema" and "cannot be applied" in detail
