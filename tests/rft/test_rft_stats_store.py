"""pass@k against the combinatorial definition, buckets, percentiles; the results log's kill safety and keys."""

import itertools
import json
import math

import pytest

from fusionforge.rft.stats import bucket, pass_at_k, percentiles
from fusionforge.rft.store import ResultStore, sample_seed, stable_hash


@pytest.mark.parametrize(
    ("n", "c", "k"), [(8, 0, 1), (8, 3, 1), (8, 3, 4), (8, 8, 8), (10, 1, 5), (16, 5, 8), (200, 7, 100)]
)
def test_pass_at_k_equals_the_binomial_definition(n, c, k):
    expected = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_pass_at_k_equals_the_fraction_of_k_subsets_with_a_pass():
    samples = [True, False, False, True, False, False]
    subsets = list(itertools.combinations(samples, 3))
    assert pass_at_k(6, 2, 3) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_pass_at_k_edge_cases():
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(3, 1, 4) is None  # fewer samples than k: undefined
    assert pass_at_k(8, 2, 1) == 0.25
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_buckets_and_percentiles():
    assert [bucket(8, 8), bucket(8, 0), bucket(8, 3), bucket(0, 0)] == ["all_pass", "all_fail", "mixed", "unverified"]
    stats = percentiles([float(i) for i in range(1, 101)])
    assert (stats["p50"], stats["p90"], stats["p99"], stats["max"], stats["mean"]) == (50, 90, 99, 100, 50.5)
    assert percentiles([]) == {}


def test_seeds_are_distinct_and_stable():
    seeds = {sample_seed(0, p, r, i) for p in ("a", "b") for r in range(3) for i in range(16)}
    assert len(seeds) == 2 * 3 * 16
    assert sample_seed(0, "a", 1, 2) == sample_seed(0, "a", 1, 2) != sample_seed(1, "a", 1, 2)
    assert all(0 <= s < 2**31 for s in seeds)
    assert stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": [1, 2], "b": 1})


def _sample(index, text="x", error=None):
    return {
        "kind": "sample",
        "prompt_id": "p",
        "round": 0,
        "index": index,
        "settings": "h",
        "text": text,
        "error": error,
        "finish_reason": "stop",
    }


def test_a_torn_last_record_is_cut_and_the_rest_kept(tmp_path):
    log = tmp_path / "results.jsonl"
    store = ResultStore(log)
    store.append(_sample(0))
    store.append(_sample(1, error="timeout: slow"))
    store.close()
    with open(log, "ab") as handle:
        handle.write(json.dumps(_sample(2)).encode()[:25])  # a kill in the middle of a write
    reopened = ResultStore(log)
    assert reopened.torn_bytes == 25 and reopened.loaded_records == 2
    assert reopened.has_response(("p", 0, 0, "h"))
    assert not reopened.has_response(("p", 0, 1, "h"))  # a failed request is tried again
    assert not reopened.has_response(("p", 0, 2, "h"))
    reopened.append(_sample(2))
    reopened.close()
    lines = log.read_bytes().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)


def test_verdict_errors_are_redone_outcomes_are_kept(tmp_path):
    store = ResultStore(tmp_path / "results.jsonl")
    key = ("p", 0, 0, "h")
    store.append(_sample(0, text="answer"))
    assert store.needs_verdict(key, "v1")
    store.append(
        {
            "kind": "verdict",
            "prompt_id": "p",
            "round": 0,
            "index": 0,
            "settings": "h",
            "verifier": "v1",
            "status": "verifier_timeout",
            "extracted": None,
            "detail": "",
        }
    )
    assert store.needs_verdict(key, "v1")
    store.append(
        {
            "kind": "verdict",
            "prompt_id": "p",
            "round": 0,
            "index": 0,
            "settings": "h",
            "verifier": "v1",
            "status": "fail",
            "extracted": "3",
            "detail": "",
        }
    )
    assert not store.needs_verdict(key, "v1") and store.needs_verdict(key, "v2")
    store.forget_text(key)
    assert store.samples[key]["text"] is None and store.samples[key]["chars"] == len("answer")
    store.close()
