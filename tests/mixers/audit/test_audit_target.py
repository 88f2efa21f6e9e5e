"""Mixture targets: the packer's mixture YAML, its per-source token targets, and clear errors."""

import pytest
from audit_outputs import record, write_output

from fusionforge.mixers.audit import load_target, run_audit
from fusionforge.mixers.audit.target import deviations
from fusionforge.pipelines.core.errors import ConfigError


def _yaml(tmp_path, text):
    path = tmp_path / "mix.yaml"
    path.write_text(text)
    return str(path)


def test_proportions_only_are_normalised_and_unnamed_sources_get_nothing(tmp_path):
    target = load_target(
        _yaml(tmp_path, "sources:\n  web: {proportion: 3}\n  books: {proportion: 1}\nvision_ratio: 0.1\n")
    )
    shares = target.shares({"web": 10**6, "books": 10**6, "forum": 50})
    assert shares == pytest.approx({"web": 0.75, "books": 0.25, "forum": 0.0}, abs=1e-6)  # targets are whole tokens
    assert target.vision_ratio == 0.1 and (target.tolerance, target.vision_tolerance) == (0.02, 0.01)


def test_repeat_and_choose_use_the_packers_own_targets(tmp_path):
    text = "budget_tokens: 1000\nsources:\n  web: {proportion: 1}\n  docs: {repeat: 2}\n  clips: {choose: 100}\n"
    shares = load_target(_yaml(tmp_path, text)).shares({"web": 500, "docs": 100, "clips": 300})
    assert shares == pytest.approx({"web": 0.7, "docs": 0.2, "clips": 0.1})  # 700 + 2 x 100 + 100 tokens


def test_max_epochs_caps_a_small_source_as_the_packer_does(tmp_path):
    text = "budget_tokens: 2000\nsources:\n  web: {proportion: 0.5, max_epochs: 1}\n  books: {proportion: 0.5}\n"
    shares = load_target(_yaml(tmp_path, text)).shares({"web": 100, "books": 1000})
    assert shares == pytest.approx({"web": 100 / 1100, "books": 1000 / 1100})


def test_a_named_source_missing_from_the_data_keeps_its_proportion(tmp_path):
    target = load_target(_yaml(tmp_path, "sources:\n  web: {proportion: 1}\n  gone: {proportion: 1}\n"))
    assert target.shares({"web": 100}) == {"web": 0.5, "gone": 0.5}
    rows = deviations(target, target.shares({"web": 100}), {"web": 1.0}, None)
    assert [(r["figure"], r["deviation"], r["ok"]) for r in rows] == [
        ("share:gone", -0.5, False),
        ("share:web", 0.5, False),
    ]


def test_options_override_the_file_and_work_without_one(tmp_path):
    path = _yaml(tmp_path, "sources: {web: {proportion: 1}}\nvision_ratio: 0.2\ntolerance: 0.05\n")
    assert load_target(path).tolerance == 0.05
    target = load_target(path, vision_ratio=0.1, tolerance=0.1)
    assert target.vision_ratio == 0.1 and target.tolerance == 0.1
    assert load_target(None) is None
    only_ratio = load_target(None, vision_ratio=0.1)
    assert only_ratio.mixture is None and only_ratio.shares({"web": 10}) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: {web: {weight: 1}}\n", "allowed keys are proportion, repeat, choose"),
        ("sources: {web: {proportion: -1}}\n", "must be a positive number"),
        ("sources: {web: {proportion: 1}}\nvision_ratio: 1.5\n", r"vision_ratio must be a number in \[0, 1\]"),
        ("sources: {web: {proportion: 1}}\ntolerance: lots\n", "must be a number"),
        ("seed: 3\n", "needs 'sources'"),
        ("vision_tolerance: 0.1\n", "nothing to check"),
    ],
)
def test_bad_targets_are_rejected_with_the_fix(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_target(_yaml(tmp_path, text))


def test_report_marks_sources_outside_the_tolerance(tmp_path):
    out = write_output(
        tmp_path / "out", "shard", [record("web/1", "web", text="a" * 40), record("books/1", "books", text="b" * 120)]
    )
    mix = _yaml(tmp_path, "sources: {web: {proportion: 0.2}, books: {proportion: 0.8}}\n")
    report = run_audit([str(out)], target=load_target(mix))
    by_source = {r["source"]: r for r in report["by_source"]}
    assert by_source["web"]["token_share"] == 0.25 and by_source["web"]["target_share"] == 0.2
    assert by_source["web"]["deviation"] == pytest.approx(0.05) and by_source["web"]["ok"] is False
    assert report["target"]["ok"] is False
    relaxed = run_audit([str(out)], target=load_target(mix, tolerance=0.06))
    assert relaxed["target"]["ok"] is True and all(r["ok"] for r in relaxed["by_source"])
