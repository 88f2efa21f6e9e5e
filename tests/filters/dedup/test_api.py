import random

import pytest
from dedup_corpus import (
    cluster_pairs,
    injected_corpus,
    precision_recall,
    random_doc,
    translate,
    true_pairs,
)

from fusionforge.filters.dedup.api import exact_duplicates, near_duplicates
from fusionforge.pipelines.demo_corpus import WORDS


def test_exact_duplicates_normalises_case_whitespace_and_unicode():
    texts = ["Hello  World", "hello world\n", "Cafe\u0301", "Café", "other"]
    assert exact_duplicates(texts) == [None, 0, None, 2, None]
    assert exact_duplicates(texts, casefold=False) == [None, None, None, 2, None]
    assert exact_duplicates(texts, collapse_whitespace=False) == [None, None, None, 2, None]
    assert exact_duplicates([]) == []


@pytest.fixture(scope="module")
def injected():
    texts, kinds = injected_corpus(seed=11, originals=700)
    return texts, kinds, true_pairs(texts, 0.8)


def test_near_duplicates_precision_and_recall_against_brute_force_jaccard(injected):
    texts, kinds, truth = injected
    assert len(truth) > 250  # exact copies and most 1% / 2% edits are above 0.8; 5% and beyond are not
    predicted = cluster_pairs(near_duplicates(texts, threshold=0.8))
    precision, recall = precision_recall(predicted, set(truth))
    assert precision >= 0.98, precision
    assert recall >= 0.95, recall
    borderline = {p for p, j in truth.items() if j < 0.85}
    assert borderline and len(borderline & predicted) / len(borderline) >= 0.9


def test_lower_threshold_finds_more_edited_copies(injected):
    texts, kinds, _ = injected
    truth = set(true_pairs(texts, 0.5))
    predicted = cluster_pairs(near_duplicates(texts, threshold=0.5))
    precision, recall = precision_recall(predicted, truth)
    assert precision >= 0.98 and recall >= 0.95, (precision, recall)
    assert len(truth) > len(cluster_pairs(near_duplicates(texts, threshold=0.8)))


def test_translations_are_not_merged():
    rng = random.Random(5)
    english = [random_doc(rng, WORDS["en"], 60, 120) for _ in range(20)]
    german = [translate(t, "en", "de") for t in english]
    assert near_duplicates(english + german, threshold=0.5) == [None] * 40


def test_kept_item_is_the_first_in_input_order_whatever_the_order():
    rng = random.Random(2)
    vocab = [f"w{i}" for i in range(5000)]
    base = random_doc(rng, vocab)
    words = base.split()
    words[40] = "changed"
    texts = [random_doc(rng, vocab), " ".join(words), base, base.upper()]
    assert near_duplicates(texts) == [None, None, 1, 1]
    order = [3, 0, 2, 1]
    result = near_duplicates([texts[i] for i in order])
    assert result == [None, None, 0, 0]
    assert near_duplicates(texts) == near_duplicates(texts)


def test_empty_and_short_texts():
    assert near_duplicates([]) == []
    assert near_duplicates(["", "  ", "a b", "a b", "!!!"]) == [None, 0, None, 2, None]
