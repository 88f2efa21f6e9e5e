"""The --json layout is a contract: real reports of every kind validate against the committed schema."""

import json

import jsonschema
import pytest
from audit_outputs import build_chain, build_plan

from fusionforge.mixers.audit import AuditOptions, Target, compare_reports, run_audit
from fusionforge.mixers.audit.schema import REPORT_SCHEMA
from fusionforge.mixers.mixture import parse_mixture

TOP_LEVEL = [
    "schema",
    "exact",
    "sample",
    "inputs",
    "skipped",
    "rows_read",
    "steps",
    "final_step",
    "totals",
    "token_basis",
    "vision_by_preset",
    "mixture",
    "by_source",
    "mixture_by_step",
    "vision_ratio",
    "funnel",
    "drop_reasons",
    "duplicates",
    "domains",
    "distributions",
    "packing",
    "sft",
    "rft",
    "target",
    "compare",
]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("schema")
    chain = build_chain(root)
    return {**chain, "pack": build_plan(root / "packed", chain["filter"])}


def _validate(report):
    jsonschema.validate(json.loads(json.dumps(report)), REPORT_SCHEMA, cls=jsonschema.Draft202012Validator)


def test_the_schema_itself_is_valid_and_pins_the_top_level_keys():
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)
    report_schema = REPORT_SCHEMA["$defs"]["report"]
    assert list(report_schema["properties"]) == TOP_LEVEL
    assert report_schema["required"] == TOP_LEVEL and report_schema["additionalProperties"] is False
    assert report_schema["properties"]["schema"] == {"const": "fusionforge.audit/3"}


def test_reports_of_every_kind_validate(outputs):
    paths = [str(p) for p in outputs.values()]
    mixture = parse_mixture({"sources": {"web": {"proportion": 1.0}}})
    full = run_audit(paths, target=Target(mixture, vision_ratio=0.1))
    assert list(full) == TOP_LEVEL
    assert full["duplicates"] and full["packing"] and full["target"]
    _validate(full)
    _validate(compare_reports(full, run_audit([str(outputs["shard"])])))
    _validate(run_audit([str(outputs["dedupe"])], AuditOptions(sample=0.5)))
    _validate(run_audit([str(outputs["pack"])]))
    _validate(run_audit([str(outputs["shard"] / "ledger.parquet")]))


def test_an_unknown_key_breaks_the_contract(outputs):
    report = run_audit([str(outputs["shard"])])
    report["totals"]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        _validate(report)
