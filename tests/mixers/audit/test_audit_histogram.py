"""The log-binned histogram: exact counts, bounded quantile error, exact merges."""

import numpy as np
import pytest

from fusionforge.mixers.audit.histogram import EXACT_LIMIT, QUANTILES, RELATIVE_ERROR, LogHistogram


def _filled(values) -> LogHistogram:
    histogram = LogHistogram()
    histogram.add(values)
    return histogram


def test_few_distinct_values_give_exact_quantiles():
    values = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 0, 7])
    histogram = _filled(values)
    for q in QUANTILES:
        assert histogram.quantile(q) == np.quantile(values, q, method="inverted_cdf")
    summary = histogram.to_dict()
    assert summary["quantiles_exact"] is True
    assert (summary["count"], summary["min"], summary["max"]) == (13, 0, 9)
    assert summary["mean"] == pytest.approx(values.mean())
    assert sum(b[2] for b in summary["bins"]) == 13


def test_many_values_fall_back_to_bins_within_the_stated_error():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.lognormal(6, 1.2, 20_000), -rng.lognormal(0, 1, 500), np.zeros(300)])
    histogram = _filled(values)
    assert histogram.exact is None
    assert histogram.count == values.size and histogram.minimum == values.min() and histogram.maximum == values.max()
    for q in QUANTILES:
        truth = np.quantile(values, q, method="inverted_cdf")
        assert abs(histogram.quantile(q) - truth) <= RELATIVE_ERROR * abs(truth) + 1e-12
    assert histogram.bins[0] == 300  # the zero bin
    assert sum(histogram.bins.values()) == values.size


def test_merging_parts_equals_the_whole_in_any_order():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 10_000, 5_000).astype(float)
    parts = np.array_split(values, 7)
    whole = _filled(values)
    merged = LogHistogram()
    for part in reversed(parts):
        merged.merge(_filled(part))
    assert merged.bins == whole.bins and merged.count == whole.count and merged.exact == whole.exact is None
    assert merged.to_dict() == whole.to_dict()
    small = [_filled([1, 2]), _filled([2, 3])]
    assert small[0].merge(small[1]).exact == {1.0: 1, 2.0: 2, 3.0: 1}


def test_exact_values_are_dropped_once_the_union_has_too_many():
    left, right = _filled(np.arange(EXACT_LIMIT)), _filled(np.arange(EXACT_LIMIT, EXACT_LIMIT + 2))
    assert left.exact is not None and right.exact is not None
    assert left.merge(right).exact is None
    assert left.count == EXACT_LIMIT + 2


def test_nan_and_infinite_values_are_ignored_and_empty_histograms_report_nothing():
    histogram = _filled([np.nan, np.inf, 2.0])
    assert histogram.count == 1 and histogram.quantile(0.5) == 2.0
    empty = LogHistogram().to_dict()
    assert empty["count"] == 0 and empty["quantiles"] == {} and empty["min"] is None


def test_scaling_estimates_the_whole_from_a_sample():
    scaled = _filled([1, 1, 2]).scaled(4)
    assert scaled.count == 12 and scaled.exact == {1.0: 8, 2.0: 4} and scaled.quantile(0.5) == 1
