import numpy as np
import pytest

from fusionforge.mixers.mixture import HASH_BUCKETS, hash_bucket, parse_mixture, plan_mixture, record_hash
from fusionforge.pipelines.core.errors import ConfigError


def _histogram(sizes, seed):
    hist = np.zeros(HASH_BUCKETS, np.int64)
    for i, size in enumerate(sizes):
        hist[hash_bucket(record_hash(seed, f"r{i}"))] += size
    return hist


def test_targets_by_tokens_with_epoch_caps_and_partial_epochs():
    rng = np.random.default_rng(0)
    sizes = {"a": rng.integers(10, 2000, 3000), "b": rng.integers(10, 200, 3000), "c": rng.integers(5, 50, 500)}
    tokens = {k: int(v.sum()) for k, v in sizes.items()}
    mixture = parse_mixture(
        {
            "seed": 1,
            "max_epochs": 3,
            "sources": {"a": {"proportion": 0.5}, "b": {"proportion": 0.5, "max_epochs": 1}, "c": {"choose": 1000}},
        }
    )
    hists = {k: _histogram(v, 1) for k, v in sizes.items()}
    plan = plan_mixture(mixture, tokens, hists)
    # b may not be repeated, so the budget follows from b: a gets as many tokens as b, not as many records
    assert plan.targets["b"].target == tokens["b"] and plan.targets["b"].epochs == 1
    assert plan.targets["a"].target == tokens["b"]
    assert plan.targets["c"].target == 1000
    for name in ("a", "c"):  # the partial epoch's hash threshold chooses the target share of *tokens*
        chosen = sum(int(s) for i, s in enumerate(sizes[name]) if plan.instances(name, record_hash(1, f"r{i}")) > 0)
        assert abs(chosen - plan.targets[name].target) <= 0.02 * plan.targets[name].target + max(sizes[name])
    # the realised mixture (tokens of every record times the times it is taken) against the target shares
    realised = {
        name: sum(int(s) * plan.instances(name, record_hash(1, f"r{i}")) for i, s in enumerate(sizes[name]))
        for name in sizes
    }
    report = plan.report(realised)
    total_target = sum(t.target for t in plan.targets.values())
    assert report["a"]["target_share"] == pytest.approx(plan.targets["a"].target / total_target)
    assert report["a"]["target_share"] == pytest.approx(report["b"]["target_share"])  # 0.5 : 0.5 by tokens
    for name in sizes:
        assert abs(report[name]["realised_share"] - report[name]["target_share"]) < 0.01, (name, report[name])
    assert plan.warnings == []  # b's limit sets the budget, so no source is cut below its share


def test_budget_repeat_and_caps():
    mixture = parse_mixture(
        {"budget_tokens": 1000, "sources": {"x": {"proportion": 3}, "y": {"proportion": 1}, "z": {"repeat": 2.5}}}
    )
    plan = plan_mixture(mixture, {"x": 100, "y": 1000, "z": 40}, {})
    assert plan.targets["z"].target == 100 and plan.targets["z"].epochs == 2
    assert plan.targets["y"].target == 225  # a quarter of the 900 left
    assert plan.targets["x"].target == 400 and plan.targets["x"].capped  # 675 wanted, 4 epochs allowed
    # x's shortfall is not handed to y (that would move y further from its share); the plan says so
    assert len(plan.warnings) == 2
    assert "'x'" in plan.warnings[0] and "675" in plan.warnings[0] and "400" in plan.warnings[0]
    assert "max_epochs" in plan.warnings[0] and "budget_tokens" in plan.warnings[0]
    assert "725" in plan.warnings[1] and "275 fewer than budget_tokens" in plan.warnings[1]
    assert plan.report({"x": 400, "y": 225, "z": 100})["x"]["capped_by_max_epochs"]
    repeat = plan_mixture(
        parse_mixture({"max_epochs": 2, "sources": {"r": {"repeat": 3}, "s": {"proportion": 1}}}),
        {"r": 100, "s": 1000},
        {},
    )
    assert (
        repeat.targets["r"].target == 200 and "repeat 3" in repeat.warnings[0] and "lower repeat" in repeat.warnings[0]
    )
    assert plan.instances("y", 0.99) == 0 and plan.instances("x", 0.5) == 4 and plan.instances("w", 0.1) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"sources": {}},
        {"sources": {"a": {"proportion": 1, "repeat": 2}}},
        {"sources": {"a": {"proportion": -1}}},
        {"sources": {"a": {"weight": 1}}},
        {"budget_tokens": -5, "sources": {"a": {"choose": 5}}},
        {"sauces": {"a": {"choose": 5}}},
    ],
)
def test_bad_mixtures_name_the_fix(bad):
    with pytest.raises(ConfigError):
        parse_mixture(bad)


def test_unknown_source_and_deterministic_hash():
    with pytest.raises(ConfigError, match="does not have"):
        plan_mixture(parse_mixture({"sources": {"nope": {"choose": 5}}}), {"a": 10}, {})
    assert record_hash(7, "x") == record_hash(7, "x") != record_hash(8, "x")
    assert 0 <= record_hash(0, "anything") < 1
