"""Paragraph counting in buckets equals a plain count; stripping keeps what is not boilerplate."""

from collections import Counter

import numpy as np

from fusionforge.filters.dedup.paragraphs import document_keys, split_paragraphs, strip_frequent
from fusionforge.pipelines.dedupe.paragraphs import frequent_keys


def test_bucketed_counts_equal_a_plain_count_of_documents_per_key(tmp_path):
    rng = np.random.default_rng(0)
    popular = rng.integers(0, 2**64, 50, dtype=np.uint64)
    files, counter = [], Counter()
    for n in range(6):
        docs = [np.unique(np.concatenate([rng.integers(0, 2**64, 30, dtype=np.uint64), rng.choice(popular, 5)]))]
        docs += [np.unique(rng.choice(popular, 8)) for _ in range(20)]
        for keys in docs:
            counter.update(int(k) for k in keys)
        path = tmp_path / f"paragraphs-{n}.npy"
        np.save(path, np.sort(np.concatenate(docs)))
        files.append(path)
    expected = sorted(k for k, c in counter.items() if c >= 3)
    for bucket_keys in (10**9, 100, 7):  # one bucket; several; hundreds
        frequent, distinct = frequent_keys(files, 3, bucket_keys)
        assert frequent.tolist() == expected and distinct == len(counter)
        assert frequent.dtype == np.uint64


def test_paragraphs_match_whatever_the_case_and_spacing_and_the_rest_is_kept():
    text = "Cookie notice:  we use COOKIES.\n\nA real paragraph\nwith two lines.\n \nShare this page"
    assert split_paragraphs(text) == [
        "Cookie notice:  we use COOKIES.",
        "A real paragraph\nwith two lines.",
        "Share this page",
    ]
    boiler = document_keys("text", "cookie notice: we use cookies.\n\nshare   THIS page", None)
    stripped, removed = strip_frequent(text, np.sort(boiler))
    assert (stripped, removed) == ("A real paragraph\nwith two lines.", 2)
    assert strip_frequent(text, np.empty(0, np.uint64)) == (text, 0)
    assert document_keys("image", "a caption", None).size == 0  # captions are not documents
    segments = [
        {"type": "text", "text": "One.\n\nOne."},
        {"type": "image", "text": None},
        {"type": "text", "text": "Two."},
    ]
    assert document_keys("interleaved", "ignored", segments).size == 2  # a paragraph repeated in a page counts once
