"""Mixture targets: the accepted YAML layouts, the checks, and clear errors."""

import pytest
from audit_outputs import record, write_output
from fusionforge.mixers.audit import load_target, run_audit
from fusionforge.mixers.audit.target import deviations
from fusionforge.pipelines.core.errors import ConfigError


def _yaml(tmp_path, text):
    path = tmp_path / "mix.yaml"
    path.write_text(text)
    return str(path)


def test_proportions_are_normalised_when_every_source_has_one(tmp_path):
    target = load_target(_yaml(tmp_path, "sources:\n  web: {proportion: 3}\n  books: 1\nvision_ratio: 0.1\n"))
    assert target.shares == {"web": 0.75, "books": 0.25} and target.closed
    assert target.share("unlisted") == 0.0 and target.vision_ratio == 0.1
    assert (target.tolerance, target.vision_tolerance) == (0.02, 0.01)


def test_list_layout_with_repeat_sources_checks_only_proportions(tmp_path):
    text = "streams:\n  - {name: web, proportion: 0.5}\n  - {name: clips, repeat: 2}\ntolerance: 0.05\n"
    target = load_target(_yaml(tmp_path, text), tolerance=None)
    assert target.shares == {"web": 0.5} and not target.closed
    assert target.share("clips") is None and target.tolerance == 0.05
    rows = deviations(target, {"web": 0.56, "clips": 0.44}, None)
    assert rows == [{"figure": "share:web", "target": 0.5, "realised": 0.56, "deviation": pytest.approx(0.06),
                     "tolerance": 0.05, "ok": False}]


def test_options_override_the_file_and_work_without_one(tmp_path):
    target = load_target(_yaml(tmp_path, "sources: {web: 1}\nvision_ratio: 0.2\n"), vision_ratio=0.1, tolerance=0.1)
    assert target.vision_ratio == 0.1 and target.tolerance == 0.1
    assert load_target(None) is None
    assert load_target(None, vision_ratio=0.1).shares == {}


@pytest.mark.parametrize(("text", "message"), [
    ("sources: [{proportion: 1}]\n", "needs a 'name'"),
    ("sources: {web: {proportion: -1}}\n", "between 0"),
    ("sources: {web: {proportion: zero}}\n", "must be a number"),
    ("vision_ratio: 1.5\n", "between 0 and 1"),
    ("seed: 3\n", "nothing to check"),
])
def test_bad_targets_are_rejected_with_the_fix(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_target(_yaml(tmp_path, text))


def test_report_marks_sources_outside_the_tolerance(tmp_path):
    out = write_output(tmp_path / "out", "shard", [
        record("web/1", "web", text="a" * 40), record("books/1", "books", text="b" * 120)])
    target = load_target(_yaml(tmp_path, "sources: {web: 0.2, books: 0.8}\n"))
    report = run_audit([str(out)], target=target)
    by_source = {r["source"]: r for r in report["by_source"]}
    assert by_source["web"]["token_share"] == 0.25 and by_source["web"]["target_share"] == 0.2
    assert by_source["web"]["deviation"] == pytest.approx(0.05) and by_source["web"]["ok"] is False
    assert report["target"]["ok"] is False
    relaxed = run_audit([str(out)], target=load_target(_yaml(tmp_path, "sources: {web: 0.2, books: 0.8}\n"),
                                                       tolerance=0.06))
    assert relaxed["target"]["ok"] is True and all(r["ok"] for r in relaxed["by_source"])
