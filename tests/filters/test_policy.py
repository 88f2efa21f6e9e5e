import math

import numpy as np
import pytest

from fusionforge.filters import policy
from fusionforge.filters.policy import top_fraction_threshold


def _chunks(values, size=97):
    return lambda: (values[i : i + size] for i in range(0, len(values), size))


@pytest.mark.parametrize("fraction", [1e-4, 0.01, 0.3, 0.5, 0.999, 1.0])
def test_threshold_equals_the_kth_best_score_also_when_narrowing(monkeypatch, fraction):
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(size=5000), [np.nan, np.inf, -np.inf], np.full(300, 0.25)])
    finite = np.sort(values[np.isfinite(values)])[::-1]
    expected = finite[max(1, math.ceil(fraction * len(finite))) - 1]
    assert top_fraction_threshold(_chunks(values), fraction) == expected
    monkeypatch.setattr(policy, "EXACT_LIMIT", 50)  # force the histogram refinement path
    monkeypatch.setattr(policy, "HISTOGRAM_BINS", 8)
    assert top_fraction_threshold(_chunks(values), fraction) == expected
    kept = (finite >= expected).sum()
    assert kept >= math.ceil(fraction * len(finite))  # ties at the threshold are all kept


def test_no_scores_and_all_equal_scores():
    assert top_fraction_threshold(lambda: iter([np.array([np.nan])]), 0.3) is None
    assert top_fraction_threshold(lambda: iter([np.full(10, 0.7)]), 0.3) == 0.7


def test_policy_reasons_follow_the_threshold_in_force():
    stage = policy.ScorePolicy()
    stage.name = "test_policy_v1"
    stage.init_policy(threshold=0.5, top_fraction=None, resolved_threshold=None, reuse_scores=False)
    assert stage.policy_reasons(np.array([0.4, 0.5, np.nan])) == ["low_score", None, None]
    stage.init_policy(threshold=None, top_fraction=0.3, resolved_threshold=0.8, reuse_scores=True)
    assert stage.policy_reasons(np.array([0.7, 0.9])) == ["low_score", None]
    stage.init_policy(threshold=None, top_fraction=0.3, resolved_threshold=None, reuse_scores=True)
    assert stage.policy_reasons(np.array([0.1])) == [None]  # the score pass found nothing to rank
