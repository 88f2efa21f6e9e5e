"""The counting markers folded one at a time give the same totals as adding them up whole."""

import numpy as np

from fusionforge.mixers.mixture import HASH_BUCKETS
from fusionforge.mixers.packing.counting import count_totals


def _summary(partition: int, sources: dict[str, tuple[int, int, int, int]], hist: dict[str, dict[str, int]]) -> dict:
    return {
        "partition": partition,
        "records": 10,
        "sources": sorted(sources),
        "tokens": {n: {"0": a, "1": b, "2": c, "vision": v} for n, (a, b, c, v) in sources.items()},
        "histograms": hist,
        "rejected": {"pack_items_v1:oversize": partition},
        "resized": partition * 2,
    }


def test_totals_add_tokens_histograms_partitions_and_rejections():
    first = _summary(0, {"web": (10, 0, 5, 0), "pairs": (3, 0, 0, 2)}, {"web": {"7": 15}, "pairs": {"7": 3, "9": 0}})
    second = _summary(3, {"web": (1, 20, 0, 4)}, {"web": {"7": 1, str(HASH_BUCKETS - 1): 20}})
    totals = count_totals(iter([first, second]))
    assert totals.tokens["web"] == {"0": 11, "1": 20, "2": 5, "vision": 4}
    assert totals.tokens["pairs"] == {"0": 3, "1": 0, "2": 0, "vision": 2}
    assert totals.source_tokens == {"web": 36, "pairs": 3}
    assert totals.partitions == {"web": [0, 3], "pairs": [0]}
    web = np.zeros(HASH_BUCKETS, np.int64)
    web[7], web[-1] = 16, 20
    np.testing.assert_array_equal(totals.histograms["web"], web)
    assert totals.histograms["pairs"][7] == 3 and totals.histograms["pairs"].sum() == 3
    assert totals.rejected == {"pack_items_v1:oversize": 3}
    assert totals.resized == 6


def test_no_markers_no_totals():
    totals = count_totals([])
    assert (totals.tokens, totals.histograms, totals.partitions, totals.rejected, totals.resized) == ({}, {}, {}, {}, 0)
