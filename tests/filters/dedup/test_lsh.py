import numpy as np
import pytest
from datasketch.lsh import _optimal_param

from fusionforge.filters.dedup.lsh import (
    EXACT_BAND,
    band_keys,
    band_rows,
    bucket_pairs,
    candidate_probability,
    lsh_params,
    unique_pairs,
)


def test_params_come_from_datasketchs_search_weighted_for_recall():
    assert lsh_params(0.8, 128, (0.5, 0.5)) == _optimal_param(0.8, 128, 0.5, 0.5) == (9, 13)
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows <= 128
    assert candidate_probability(0.8, bands, rows) > 0.97 > candidate_probability(0.8, 9, 13)
    with pytest.raises(ValueError, match="threshold"):
        lsh_params(1.5, 128)


def test_equal_bands_give_equal_keys_and_different_bands_differ():
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, (3, 20), dtype=np.uint64).astype(np.uint32)
    sigs[1, :5] = sigs[0, :5]  # band 0 shared
    keys = band_keys(sigs, bands=4, rows=5)
    assert keys[0, 0] == keys[1, 0]
    assert (keys[0, 1:] != keys[1, 1:]).all() and (keys[2] != keys[0]).all()
    assert band_keys(sigs, 4, 5, salt=1)[0, 0] != keys[0, 0]
    with pytest.raises(ValueError, match="permutations"):
        band_keys(sigs, 5, 5)


def test_bucket_pairs_exact_edges_collapsed_copies_and_fanout():
    items = np.array([10, 11, 12, 13, 14])
    exact = np.array([[1, 1], [1, 1], [2, 2], [3, 3], [4, 4]], np.uint64)  # 10 and 11 are exact copies
    keys = np.array([[7, 100], [7, 100], [7, 101], [8, 102], [7, 103]], np.uint64)
    rows = band_rows(0, items, exact, keys, np.array([True, True, True, True, False]))
    member, first, left, right = bucket_pairs(rows)
    assert list(zip(member, first)) == [(11, 10)]
    pairs = sorted(zip(rows["item"][left], rows["item"][right]))
    assert pairs == [(10, 12)]  # 11 counts once (as 10); 13 shares nothing; 14 has no bands
    big = {
        "space": np.zeros(10, np.int8),
        "band": np.zeros(10, np.int16),
        "key": np.full(10, 5, np.uint64),
        "item": np.arange(10),
        "exact_hi": np.arange(10, dtype=np.uint64),
        "exact_lo": np.zeros(10, np.uint64),
    }
    _, _, left, right = bucket_pairs(big, fanout=3)
    assert len(left) == 9 + 8 + 7 and set(left) == {0, 1, 2}
    _, _, left, right = bucket_pairs(big, fanout=64)
    assert len(left) == 45 and (big["item"][left] < big["item"][right]).all()
    assert (rows["band"] == EXACT_BAND).sum() == 5


def test_bucket_pairs_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    n = 300
    rows = {
        "space": np.zeros(n, np.int8),
        "band": rng.integers(0, 4, n).astype(np.int16),
        "key": rng.integers(0, 20, n).astype(np.uint64),
        "item": rng.permutation(n).astype(np.int64),
        "exact_hi": rng.integers(0, 50, n).astype(np.uint64),
        "exact_lo": np.zeros(n, np.uint64),
    }
    shuffled = rng.permutation(n)

    def pairs(r):
        _, _, left, right = bucket_pairs(r)
        a, b = r["item"][left], r["item"][right]
        keep = unique_pairs(a, b)
        return list(zip(a[keep], b[keep]))

    assert pairs(rows) == pairs({k: v[shuffled] for k, v in rows.items()})
