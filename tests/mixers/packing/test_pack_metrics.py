"""PackMetrics on hand-made plan rows: every figure of report.json against values worked out by hand."""

import pyarrow as pa
import pytest

from fusionforge.mixers.packing.metrics import PackMetrics, tolerance_check
from fusionforge.mixers.packing.plan_table import WINDOW_SCHEMA

L, TARGET = 100, 0.1


def _segment(sample_id, source, length, vision=0, split=False, start=0):
    return {
        "sample_id": sample_id,
        "source": source,
        "modality": "text",
        "epoch": 0,
        "piece": 0,
        "sample_start": start,
        "length": length,
        "offset": 0,
        "vision_tokens": vision,
        "split": split,
        "partition": 0,
        "row": 0,
        "media": [],
    }


def _row(window, segments):
    tokens = sum(s["length"] for s in segments)
    vision = sum(s["vision_tokens"] for s in segments)
    return {
        "window": window,
        "tokens": tokens,
        "text_tokens": tokens - vision,
        "vision_tokens": vision,
        "padding": L - tokens,
        "items": len(segments),
        "segments": segments,
        "cu_seqlens": [0, tokens],
    }


# Five sequences in three windows (per-sequence vision ratio in brackets):
# window 0: s0 = 90 text + a 10-token image [0.10], s1 = the first 100 tokens of a long text C [0]
# window 1: s2 = C's last 50 + a 50-token image pair with 30 vision [0.30], s3 = piece 0 of a document E [0.10]
# window 2 (the final, smaller window): s4 = piece 1 of E [0.10]
ROWS = [
    _row(0, [_segment("a", "web", 90), _segment("b", "photos", 10, vision=10)]),
    _row(0, [_segment("c", "web", 100, split=True)]),
    _row(1, [_segment("c", "web", 50, split=True, start=100), _segment("d", "photos", 50, vision=30)]),
    _row(1, [_segment("e", "photos", 50, vision=5, split=True)]),
    _row(2, [_segment("e", "photos", 80, vision=8, split=True, start=50)]),
]


def _table(rows):
    return pa.Table.from_pylist(rows, schema=WINDOW_SCHEMA)


def test_every_figure_matches_the_hand_computed_value():
    metrics = PackMetrics(L, TARGET, batch=2)
    metrics.add_rows(_table(ROWS[:4]))  # the driver hands over whole windows, several at a time
    metrics.add_rows(_table(ROWS[4:]))
    s = metrics.summary()
    assert (s["sequences"], s["tokens"], s["vision_tokens"], s["text_tokens"]) == (5, 430, 53, 377)
    assert s["padding_tokens"] == 70 and s["padding_fraction"] == pytest.approx(70 / 500)
    assert s["global_vision_ratio"] == pytest.approx(53 / 430)
    assert s["global_ratio_error"] == pytest.approx(53 / 430 - 0.1)
    # windows: 10/200 - 0.1 = -0.05, 35/150 - 0.1 = +0.1333; the final window (8/80) is reported apart
    assert s["windows"] == 3
    assert s["window_ratio_error_max"] == pytest.approx(35 / 150 - 0.1)
    assert s["window_ratio_error_mean"] == pytest.approx((0.05 + (35 / 150 - 0.1)) / 2)
    assert s["window_ratio_error_p95"] == pytest.approx(0.05 + 0.95 * (35 / 150 - 0.1 - 0.05))  # linear, 2 values
    assert s["window_ratio_error_last"] == pytest.approx(0.0)
    # sliding pairs: s0+s1 10/200, s1+s2 30/200, s2+s3 35/150, s3+s4 13/130 (across the two add_rows calls)
    assert s["sliding_ratio_error_max"] == pytest.approx(35 / 150 - 0.1) and metrics.sliding_count == 4
    ratio = s["per_sequence_ratio"]  # [0.1, 0, 0.3, 0.1, 0.1]
    assert ratio["mean"] == pytest.approx(0.12)
    assert (ratio["p5"], ratio["p50"], ratio["p95"]) == (0.0, 0.1, 0.3)
    assert s["zero_vision_share"] == pytest.approx(1 / 5)
    assert s["within_band_share"] == pytest.approx(3 / 5)  # s0, s3, s4 within +-5 pp of 10%
    assert (s["split_documents"], s["split_segments"]) == (2, 4)  # c and e, each counted once
    assert s["items_per_sequence"] == {"mean": pytest.approx(7 / 5), "max": 2}
    assert s["tokens_by_source"] == {"photos": 10 + 50 + 50 + 80, "web": 90 + 100 + 50}


def test_windows_fed_one_by_one_give_the_same_figures():
    whole = PackMetrics(L, TARGET, batch=2)
    whole.add_rows(_table(ROWS))
    one_by_one = PackMetrics(L, TARGET, batch=2)
    for window in range(3):
        one_by_one.add_rows(_table([r for r in ROWS if r["window"] == window]))
    assert one_by_one.summary() == whole.summary()


def test_a_single_window_and_no_rows():
    metrics = PackMetrics(L, TARGET, batch=4)
    metrics.add_rows(_table(ROWS[:2]))
    s = metrics.summary()
    assert s["windows"] == 1 and s["window_ratio_error_max"] == s["window_ratio_error_mean"] == pytest.approx(0.05)
    assert s["sliding_ratio_error_max"] == 0.0 and metrics.sliding_count == 0  # fewer sequences than one batch
    empty = PackMetrics(L, TARGET, batch=4).summary()
    assert (empty["sequences"], empty["padding_fraction"], empty["window_ratio_error_p95"]) == (0, 0.0, 0.0)


def test_tolerance_check():
    s = PackMetrics(L, TARGET, batch=2)
    s.add_rows(_table(ROWS))
    summary = s.summary()  # global error +0.0233, worst full window 0.1333
    assert tolerance_check(summary, 0.01) == {"tolerance": 0.01, "global": False, "windows": False, "ok": False}
    assert tolerance_check(summary, 0.05) == {"tolerance": 0.05, "global": True, "windows": False, "ok": False}
    assert tolerance_check(summary, 35 / 150 - 0.1)["ok"]  # an error equal to the tolerance is within it
