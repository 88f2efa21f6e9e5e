"""The JSON Schema of ``fusionforge audit --json`` (``schema: fusionforge.audit/3``).

Tools read audit JSON in CI, so its layout is a contract: every key is required and no other key is
allowed. A change to the layout must change ``SCHEMA_ID``'s version and this schema together (the
tests validate real reports against it).
"""

from __future__ import annotations

from typing import Any

from fusionforge.mixers.audit.summary import SCHEMA_ID

NUMBER = {"type": ["number", "null"]}
INTEGER = {"type": ["integer", "null"]}
STRING = {"type": ["string", "null"]}
BOOLEAN = {"type": ["boolean", "null"]}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _rows(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": _object(properties)}


HISTOGRAM = _object(
    {
        "count": {"type": "integer"},
        "min": NUMBER,
        "max": NUMBER,
        "mean": NUMBER,
        "quantiles": {
            "type": "object",
            "additionalProperties": NUMBER,
            "propertyNames": {"enum": ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]},
        },
        "quantiles_exact": {"type": "boolean"},
        "bins": {
            "type": "array",
            "items": {
                "type": "array",
                "prefixItems": [NUMBER, NUMBER, {"type": "integer"}],
                "minItems": 3,
                "maxItems": 3,
            },
        },
    }
)
HISTOGRAMS = {"type": "object", "additionalProperties": {"$ref": "#/$defs/histogram"}}
SFT_FIGURES = {
    "rows": {"type": "integer"},
    "conversations": {"type": "integer"},
    "tokens": {"type": "integer"},
    "tool_use_share": NUMBER,
}
FUNNEL_ROW = {
    "step": {"type": "string"},
    "stage": {"type": "string"},
    "status": STRING,
    "removed": {"type": "integer"},
    "remaining": {"type": "integer"},
    "removed_tokens": INTEGER,
}

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "histogram": HISTOGRAM,
        "report": _object(
            {
                "schema": {"const": SCHEMA_ID},
                "exact": {"type": "boolean"},
                "sample": {
                    "oneOf": [
                        {"type": "null"},
                        _object(
                            {
                                "fraction": {"type": "number"},
                                "seed": {"type": "integer"},
                                "rows_read": {"type": "integer"},
                                "rows_total": {"type": "integer"},
                                "note": {"type": "string"},
                            }
                        ),
                    ]
                },
                "inputs": _rows(
                    {
                        "path": {"type": "string"},
                        "step": {"type": "string"},
                        "complete": {"type": "boolean"},
                        "upstream": STRING,
                        "partitions_done": INTEGER,
                        "partitions_seen": INTEGER,
                    }
                ),
                "skipped": {"type": "array", "items": {"type": "string"}},
                "rows_read": {"type": "integer"},
                "steps": {"type": "array", "items": {"type": "string"}},
                "final_step": STRING,
                "totals": _object(
                    {
                        k: {"type": "integer"}
                        for k in (
                            "records",
                            "text_bytes",
                            "media_bytes",
                            "text_tokens",
                            "vision_tokens",
                            "images",
                            "videos",
                            "tokens",
                        )
                    }
                    | {"vision_ratio": NUMBER}
                ),
                "token_basis": _object(
                    {
                        "text_estimated_records": {"type": "integer"},
                        "vision_estimated_records": {"type": "integer"},
                        "records": {"type": "integer"},
                        "estimate_rule": _object({"text": {"type": "string"}, "vision": {"type": "string"}}),
                        "vision_preset": STRING,
                    }
                ),
                "vision_by_preset": _rows(
                    {
                        "preset": {"type": "string"},
                        "source": {"type": "string"},
                        "modality": {"type": "string"},
                        "text_tokens": {"type": "integer"},
                        "vision_tokens": {"type": "integer"},
                        "vision_ratio": NUMBER,
                    }
                ),
                "mixture": _rows(
                    {
                        "source": {"type": "string"},
                        "modality": {"type": "string"},
                        "language": {"type": "string"},
                        **{
                            k: {"type": "integer"}
                            for k in ("records", "text_bytes", "media_bytes", "text_tokens", "vision_tokens", "tokens")
                        },
                        "token_share": NUMBER,
                    }
                ),
                "by_source": _rows(
                    {
                        "source": {"type": "string"},
                        "records": {"type": "integer"},
                        "text_tokens": {"type": "integer"},
                        "vision_tokens": {"type": "integer"},
                        "tokens": {"type": "integer"},
                        "token_share": NUMBER,
                        "vision_ratio": NUMBER,
                        "packed_share": NUMBER,
                        "target_share": NUMBER,
                        "deviation": NUMBER,
                        "ok": BOOLEAN,
                    }
                ),
                "mixture_by_step": _rows(
                    {
                        "step": {"type": "string"},
                        "source": {"type": "string"},
                        "records": INTEGER,
                        "tokens": {"type": "integer"},
                        "token_share": NUMBER,
                    }
                ),
                "vision_ratio": _object(
                    {"realised": NUMBER, "basis": STRING, "target": NUMBER, "deviation": NUMBER, "ok": BOOLEAN}
                ),
                "funnel": {"type": "object", "additionalProperties": _rows(FUNNEL_ROW)},
                "drop_reasons": _rows(
                    {
                        "step": {"type": "string"},
                        "status": {"type": "string"},
                        "reason": {"type": "string"},
                        "records": {"type": "integer"},
                        "share_of_step_inputs": NUMBER,
                        "examples": {"type": "array", "items": {"type": "string"}},
                    }
                ),
                "duplicates": {
                    "oneOf": [
                        {"type": "null"},
                        _object(
                            {
                                "steps": {"type": "array", "items": {"type": "string"}},
                                "clusters": {"type": "integer"},
                                "members_listed": {"type": "integer"},
                                "records_in_clusters": {"type": "integer"},
                                "duplicates": {"type": "integer"},
                                "size_distribution": _rows(
                                    {"size": {"type": "integer"}, "clusters": {"type": "integer"}}
                                ),
                                "size_quantiles": _object({k: INTEGER for k in ("p50", "p90", "p99", "max")}),
                                "similarity": {"$ref": "#/$defs/histogram"},
                            }
                        ),
                    ]
                },
                "domains": {
                    "oneOf": [
                        {"type": "null"},
                        _object(
                            {
                                "steps": {"type": "array", "items": {"type": "string"}},
                                "domains": {"type": "integer"},
                                "capped": {"type": "boolean"},
                                "rows": _rows(
                                    {
                                        "domain": {"type": "string"},
                                        "records": {"type": "object", "additionalProperties": {"type": "integer"}},
                                    }
                                ),
                            }
                        ),
                    ]
                },
                "distributions": {
                    "type": "object",
                    "additionalProperties": _object({"kept": HISTOGRAMS, "rejected": HISTOGRAMS}),
                },
                "packing": {
                    "oneOf": [
                        {"type": "null"},
                        _object(
                            {
                                "steps": {"type": "array", "items": {"type": "string"}},
                                "sequences": {"type": "integer"},
                                "tokens": {"type": "integer"},
                                "text_tokens": {"type": "integer"},
                                "vision_tokens": {"type": "integer"},
                                "vision_ratio": NUMBER,
                                "capacity_tokens": INTEGER,
                                "padding_tokens": INTEGER,
                                "padding_fraction": NUMBER,
                                "efficiency": NUMBER,
                                "zero_vision_sequences": {"type": "integer"},
                                "zero_vision_share": NUMBER,
                                "band": {"type": "number"},
                                "band_target": NUMBER,
                                "within_band_share": NUMBER,
                                "split_documents": {"type": "integer"},
                                "split_segments": {"type": "integer"},
                                "tokens_by_source": _rows(
                                    {"source": {"type": "string"}, "tokens": {"type": "integer"}, "token_share": NUMBER}
                                ),
                                "per_sequence": HISTOGRAMS,
                            }
                        ),
                    ]
                },
                "sft": {
                    "oneOf": [
                        {"type": "null"},
                        _object(
                            {
                                "steps": {"type": "array", "items": {"type": "string"}},
                                "splits": _rows({"split": {"type": "string"}, **SFT_FIGURES}),
                                "by_source": _rows(
                                    {
                                        "split": {"type": "string"},
                                        "source": {"type": "string"},
                                        **SFT_FIGURES,
                                        "token_share": NUMBER,
                                    }
                                ),
                                "tokens_per_conversation": {"$ref": "#/$defs/histogram"},
                            }
                        ),
                    ]
                },
                "rft": {
                    "oneOf": [
                        {"type": "null"},
                        _object(
                            {
                                "steps": {"type": "array", "items": {"type": "string"}},
                                "prompts": {"type": "integer"},
                                "mean_pass_rate": NUMBER,
                                "buckets": _rows({"bucket": {"type": "string"}, "prompts": {"type": "integer"}}),
                                "by_task": _rows(
                                    {
                                        "task": {"type": "string"},
                                        **{k: {"type": "integer"} for k in ("prompts", "samples", "passed")},
                                        "pass_rate": NUMBER,
                                        "accepted": {"type": "integer"},
                                    }
                                ),
                                "pass_rate": {"$ref": "#/$defs/histogram"},
                                "samples": {"type": "integer"},
                                "by_status": _rows({"status": {"type": "string"}, "samples": {"type": "integer"}}),
                                **{k: {"type": "integer"} for k in ("accepted", "prompt_tokens", "completion_tokens")},
                            }
                        ),
                    ]
                },
                "target": {
                    "oneOf": [
                        {"type": "null"},
                        _object(
                            {
                                "path": STRING,
                                "tolerance": {"type": "number"},
                                "vision_tolerance": {"type": "number"},
                                "ok": {"type": "boolean"},
                                "checks": _rows(
                                    {
                                        "figure": {"type": "string"},
                                        "target": {"type": "number"},
                                        "realised": NUMBER,
                                        "deviation": NUMBER,
                                        "tolerance": {"type": "number"},
                                        "ok": {"type": "boolean"},
                                    }
                                ),
                            }
                        ),
                    ]
                },
                "compare": {
                    "oneOf": [
                        {"type": "null"},
                        _object(
                            {
                                "other": {"$ref": "#/$defs/report"},
                                "rows": _rows(
                                    {
                                        "figure": {"type": "string"},
                                        "this": {"type": ["number", "string", "null"]},
                                        "other": {"type": ["number", "string", "null"]},
                                        "delta": NUMBER,
                                        "relative": NUMBER,
                                    }
                                ),
                            }
                        ),
                    ]
                },
            }
        ),
    },
    "$ref": "#/$defs/report",
}
