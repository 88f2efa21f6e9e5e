"""sft build on tool-calling records shaped as BFCL, xLAM and Glaive publish them (built here, not downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionforge.mixers.sft.build import run_build
from fusionforge.mixers.sft.config import BuildConfig
from fusionforge.pipelines.core.settings import build_config


def tool_chat(record_id, tool, arguments, question):
    """An OpenAI-messages conversation that calls ``tool`` once and answers from its result."""
    return {
        "id": record_id,
        "tools": [{"type": "function", "function": tool}],
        "messages": [
            {"role": "user", "content": question},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": tool["name"], "arguments": json.dumps(arguments)},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "assistant", "content": "The result is 42."},
        ],
    }


BFCL_TOOL = {  # BFCL: "dict" at the top, Python type names below
    "name": "calculate_triangle_area",
    "description": "Area of a triangle.",
    "parameters": {
        "type": "dict",
        "properties": {"base": {"type": "float"}, "height": {"type": "float"}, "unit": {"type": "any"}},
        "required": ["base", "height"],
    },
}
XLAM_TOOL = {  # xLAM: parameters as a plain mapping with Python-ish type strings
    "name": "search_products",
    "description": "Search the catalogue.",
    "parameters": {
        "query": {"description": "Search text.", "type": "str"},
        "limit": {"description": "How many.", "type": "int, optional", "default": 10},
        "tags": {"description": "Filters.", "type": "List[str]"},
    },
}
GLAIVE_TOOL = {  # Glaive: plain JSON Schema
    "name": "get_exchange_rate",
    "description": "Exchange rate between two currencies.",
    "parameters": {
        "type": "object",
        "properties": {"base": {"type": "string"}, "target": {"type": "string"}},
        "required": ["base", "target"],
    },
}
NONSENSE_TOOL = {"name": "broken", "parameters": {"type": "object", "properties": {"x": {"type": "banana"}}}}


@pytest.fixture
def tool_chats(tmp_path):
    rows = [
        tool_chat("bfcl1", BFCL_TOOL, {"base": 3.0, "height": 4.5}, "What is the area of a 3 by 4.5 triangle?"),
        tool_chat("bfcl2", BFCL_TOOL, {"base": "three", "height": 4}, "Area of a triangle with base three?"),
        tool_chat("xlam1", XLAM_TOOL, {"query": "red shoes", "tags": ["sale"]}, "Find red shoes on sale."),
        tool_chat("glaive1", GLAIVE_TOOL, {"base": "EUR", "target": "USD"}, "How many dollars is one euro?"),
        tool_chat("broken1", NONSENSE_TOOL, {"x": 1}, "Call the broken tool, please."),
    ]
    path = tmp_path / "tools.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def build(tool_chats, out, **overrides):
    base = {"inputs": (f"tools={tool_chats}",), "output": str(out), "executor": "local", "val_fraction": 0.0}
    return run_build(build_config(BuildConfig, {**base, **overrides}))


def rejected_reasons(out: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    return {row["id"]: row["reason"] for row in rows}


def test_lenient_dialect_keeps_wild_schemas_validates_them_and_counts_the_mappings(tool_chats, tmp_path):
    report = build(tool_chats, tmp_path / "out")
    reasons = rejected_reasons(tmp_path / "out")
    assert set(reasons) == {"tools/bfcl2", "tools/broken1"}
    assert "tool_arguments_schema" in reasons["tools/bfcl2"]  # "three" is not a number: float still means one
    assert "bad_tool_schema" in reasons["tools/broken1"]
    assert report["tool_schemas"]["dialect"] == "lenient"
    assert report["tool_schemas"]["mapped"] == {
        "List[str]->array": 1,
        "any->unconstrained": 2,
        "dict->object": 2,
        "float->number": 2,
        "int->integer": 1,
        "optional_suffix->not_required": 1,
        "str->string": 1,
        "xlam_parameters->object": 1,
    }
    kept = {
        json.loads(line)["id"]: json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()
    }
    assert set(kept) == {"tools/bfcl1", "tools/xlam1", "tools/glaive1"}
    written = kept["tools/bfcl1"]["tools"][0]["function"]["parameters"]
    assert written == BFCL_TOOL["parameters"]  # the user's own schema, not the mapped one


def test_strict_dialect_drops_what_is_not_json_schema(tool_chats, tmp_path):
    report = build(tool_chats, tmp_path / "strict", schema_dialect="strict")
    reasons = rejected_reasons(tmp_path / "strict")
    assert {k for k, v in reasons.items() if "bad_tool_schema" in v} == {"tools/bfcl1", "tools/bfcl2", "tools/broken1"}
    assert report["tool_schemas"] == {"dialect": "strict", "mapped": {}}
