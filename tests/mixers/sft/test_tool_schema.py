"""Tool schemas in the shapes BFCL, xLAM and Glaive publish, mapped to JSON Schema and then really validated."""

from __future__ import annotations

import json

import pytest
from jsonschema.validators import validator_for

from fusionforge.mixers.sft.tool_schema import lenient_schema
from fusionforge.mixers.sft.validate import schema_problem

# BFCL (gorilla's berkeley-function-call-leaderboard): Python type names, "dict" at the top.
BFCL = {
    "type": "dict",
    "properties": {
        "base": {"type": "float", "description": "The base of the triangle."},
        "point": {"type": "tuple", "items": {"type": "integer"}},
        "options": {"type": "dict", "properties": {"unit": {"type": "string"}}},
        "extra": {"type": "any"},
        "tags": {"type": "list", "items": {"type": "string"}},
        "exact": {"type": "boolean"},
    },
    "required": ["base"],
}
# xLAM (Salesforce xlam-function-calling-60k): a plain mapping of argument -> spec, Python-ish type strings.
XLAM = {
    "query": {"description": "Search text.", "type": "str", "default": "cats"},
    "limit": {"description": "How many.", "type": "int, optional"},
    "ids": {"description": "Which ones.", "type": "List[int]"},
    "ratio": {"description": "A float.", "type": "float"},
}
# Glaive (glaive-function-calling-v2): plain JSON Schema; nothing to map.
GLAIVE = {
    "type": "object",
    "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["location"],
}


def _check(schema, arguments):
    return schema_problem(json.dumps(schema, sort_keys=True), arguments)


def test_the_raw_bfcl_schema_is_invalid_json_schema_and_the_mapped_one_validates():
    assert _check(BFCL, {"base": 2.5})[0] == "bad_tool_schema"
    mapped, mappings = lenient_schema(BFCL)
    validator_for(mapped).check_schema(mapped)
    assert _check(mapped, {"base": 2.5, "point": [1, 2], "extra": {"x": [1]}, "tags": ["a"], "exact": True}) is None
    assert _check(mapped, {"base": "wide"})[0] == "tool_arguments_schema"  # float still means a number
    assert _check(mapped, {"point": [1, 2]})[0] == "tool_arguments_schema"  # required still holds
    assert sorted(set(mappings)) == [
        "any->unconstrained",
        "dict->object",
        "float->number",
        "list->array",
        "tuple->array",
    ]
    assert BFCL["type"] == "dict"  # the caller's schema is left as it was


def test_xlam_parameter_mappings_become_an_object_with_required_arguments():
    mapped, mappings = lenient_schema(XLAM)
    assert mapped["type"] == "object" and mapped["required"] == ["ids", "ratio"]
    assert mapped["properties"]["ids"] == {"description": "Which ones.", "type": "array", "items": {"type": "integer"}}
    assert _check(mapped, {"ids": [1, 2], "ratio": 0.5}) is None
    assert _check(mapped, {"ids": ["x"], "ratio": 0.5})[0] == "tool_arguments_schema"
    assert _check(mapped, {"ids": [1], "ratio": 0.5, "limit": "ten"})[0] == "tool_arguments_schema"
    assert "xlam_parameters->object" in mappings and "List[int]->array" in mappings and "int->integer" in mappings


def test_glaive_json_schema_is_left_alone():
    mapped, mappings = lenient_schema(GLAIVE)
    assert (mapped, mappings) == (GLAIVE, [])


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("double", {"type": "number"}),
        ("long", {"type": "integer"}),
        ("bool", {"type": "boolean"}),
        ("Optional[str]", {"type": "string"}),
        (["str", "None"], {"type": ["string", "null"]}),
        (["int", "any"], {}),
        ("Dict[str, int]", {"type": "object"}),
    ],
)
def test_type_names(written, expected):
    mapped, _ = lenient_schema({"type": "object", "properties": {"x": {"type": written}}})
    assert mapped["properties"]["x"] == expected


def test_a_schema_that_means_nothing_stays_invalid():
    mapped, _ = lenient_schema({"type": "object", "properties": {"x": {"type": "banana"}}})
    assert _check(mapped, {"x": 1})[0] == "bad_tool_schema"
