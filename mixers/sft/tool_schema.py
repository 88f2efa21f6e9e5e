"""Tool schemas as public tool-calling sets write them, mapped to JSON Schema before validation.

BFCL writes parameter types as Python names (``float``, ``dict``, ``tuple``, ``any``); xLAM gives
``parameters`` as a plain mapping of argument name to ``{"type": "str, optional", ...}`` with
``List[int]``-style types; Glaive mostly writes JSON Schema. BFCL's own harness maps those names
before it sends tools to OpenAI-style APIs; ``lenient_schema`` does the same here, so a
conversation is dropped as ``bad_tool_schema`` only when its schema means nothing even then.

The mapping is returned with the schema (``"float->number"``, ``"xlam_parameters->object"``), so
the build report can count what was rewritten; the user's original schema stays in the output.
"""

from __future__ import annotations

import copy
import re
from typing import Any

SCHEMA_DIALECTS = ("lenient", "strict")  # sft build --schema-dialect

JSON_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
TYPE_NAMES = {
    "str": "string",
    "text": "string",
    "float": "number",
    "double": "number",
    "decimal": "number",
    "int": "integer",
    "long": "integer",
    "dict": "object",
    "map": "object",
    "mapping": "object",
    "hashmap": "object",
    "list": "array",
    "tuple": "array",
    "set": "array",
    "sequence": "array",
    "bool": "boolean",
    "none": "null",
    "nonetype": "null",
}
ANY_NAMES = {"any", "object_any", "typing.any"}
_GENERIC = re.compile(r"^\s*(?:typing\.)?(\w+)\s*(?:\[(.*)\])?\s*$")


def lenient_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A JSON Schema for ``schema`` and the mappings it took (empty when it already was one)."""
    mappings: list[str] = []
    result = copy.deepcopy(schema)
    if _is_plain_parameter_mapping(result):
        result = _from_parameter_mapping(result, mappings)
    _walk(result, mappings)
    return result, mappings


def _is_plain_parameter_mapping(schema: dict[str, Any]) -> bool:
    """xLAM's form: every value describes one argument, and nothing says it is a schema."""
    schema_keys = {"type", "properties", "$schema", "anyOf", "oneOf", "allOf", "items", "required", "$ref"}
    return (
        bool(schema)
        and not schema_keys & schema.keys()
        and all(isinstance(v, dict) and ("type" in v or "description" in v) for v in schema.values())
    )


def _from_parameter_mapping(parameters: dict[str, Any], mappings: list[str]) -> dict[str, Any]:
    mappings.append("xlam_parameters->object")
    required = []
    for name, spec in parameters.items():
        kind = spec.get("type")
        optional = isinstance(kind, str) and kind.replace(" ", "").lower().endswith(",optional")
        if optional:
            spec["type"] = kind.rsplit(",", 1)[0].strip()
            mappings.append("optional_suffix->not_required")
        if not optional and "default" not in spec:
            required.append(name)
    return {"type": "object", "properties": parameters, "required": required}


def _walk(node: Any, mappings: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, mappings)
        return
    if not isinstance(node, dict):
        return
    if "type" in node:
        _map_type(node, mappings)
    for key, value in list(node.items()):
        if key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(value, dict):
            for child in value.values():
                _walk(child, mappings)
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "not", "prefixItems"):
            _walk(value, mappings)


def _map_type(node: dict[str, Any], mappings: list[str]) -> None:
    """Rewrite ``node["type"]`` in place: a known name, a list of names, ``List[int]``, or ``any``."""
    kind = node["type"]
    if isinstance(kind, list):
        mapped = [_one_type(k, mappings) for k in kind]
        if any(m is None for m in mapped):  # "any" among them: no constraint
            del node["type"]
            return
        node["type"] = [m["type"] for m in mapped]
        return
    mapped = _one_type(kind, mappings)
    if mapped is None:
        del node["type"]
        return
    node["type"] = mapped["type"]
    if "items" in mapped and "items" not in node:
        node["items"] = mapped["items"]


def _one_type(kind: Any, mappings: list[str]) -> dict[str, Any] | None:
    """``{"type": ..., ["items": ...]}`` for one type name; None for ``any``; unknown names kept as they are."""
    if not isinstance(kind, str) or kind in JSON_TYPES:
        return {"type": kind}
    match = _GENERIC.match(kind)
    if not match:
        return {"type": kind}
    base, argument = match.group(1).lower(), match.group(2)
    if base == "optional" and argument:
        mappings.append(f"{kind}->{argument.strip()}")
        return _one_type(argument.strip(), mappings)
    if base in ANY_NAMES:
        mappings.append(f"{kind}->unconstrained")
        return None
    json_type = base if base in JSON_TYPES else TYPE_NAMES.get(base)
    if json_type is None:
        return {"type": kind}  # still invalid: validation says so
    if json_type != kind:
        mappings.append(f"{kind}->{json_type}")
    result: dict[str, Any] = {"type": json_type}
    if json_type == "array" and argument and "," not in argument:
        item = _one_type(argument.strip(), mappings)
        if item is not None:
            result["items"] = item
    return result
