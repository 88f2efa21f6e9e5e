import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash
from dedup_corpus import random_doc, shingles

from fusionforge.filters.dedup import text_normalize as tn
from fusionforge.filters.dedup.minhash import (
    EMPTY,
    MinHasher,
    TextSketcher,
    estimated_jaccard,
    exact_jaccard,
    shingle_hashes,
    token_hashes,
)


def test_signatures_are_bit_identical_to_datasketch_affine32():
    rng = np.random.default_rng(0)
    counts = np.array([5, 1, 0, 300, 17])
    shingle_values = rng.integers(0, 2**32, counts.sum(), dtype=np.uint64).astype(np.uint32)
    ours = MinHasher(num_perm=64, seed=7).signatures(shingle_values, counts)
    start = 0
    for row, count in enumerate(counts):
        reference = MinHash(num_perm=64, seed=7, hashfunc=lambda v: v)
        reference.update_batch([int(v) for v in shingle_values[start : start + count]])
        assert np.array_equal(ours[row], reference.hashvalues), row
        start += count
    assert (ours[2] == EMPTY).all()


def test_token_hashes_do_not_depend_on_the_batch():
    first = token_hashes(tn.word_tokens(pa.array(["alpha beta gamma", "delta"])))
    second = token_hashes(tn.word_tokens(pa.array(["x y", "", None, "gamma alpha  beta", "supercalifragilistic"])))
    assert list(first[1]) == [3, 1] and list(second[1]) == [2, 0, 0, 3, 1]
    alpha, beta, gamma = first[0][:3]
    assert list(second[0][2:5]) == [gamma, alpha, beta]
    assert len(set(first[0].tolist())) == 4  # distinct words, distinct hashes


def test_shingles_per_document_including_short_and_empty_ones():
    hashes, counts = token_hashes(tn.word_tokens(pa.array(["a b c d e f g", "a b", "", "c d e f g"])))
    values, per_doc = shingle_hashes(hashes, counts, 5)
    assert list(per_doc) == [3, 1, 0, 1]
    assert values[2] == values[4]  # "c d e f g": the last 5-gram of the first text, the only one of the last
    assert len(set(values[:3].tolist())) == 3


def test_estimate_tracks_the_true_jaccard_of_word_5grams():
    import random

    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(3000)]
    pairs = []
    for rate in (0.0, 0.02, 0.05, 0.1, 0.3):
        for _ in range(20):
            words = random_doc(rng, vocab).split()
            other = [rng.choice(vocab) if rng.random() < rate else w for w in words]
            pairs.append((" ".join(words), " ".join(other)))
    sketch = TextSketcher(num_perm=256).sketch([t for pair in pairs for t in pair])
    estimates = estimated_jaccard(sketch.signatures[0::2], sketch.signatures[1::2])
    truth = np.array([len(shingles(a) & shingles(b)) / len(shingles(a) | shingles(b)) for a, b in pairs])
    exact = np.array(
        [exact_jaccard(sketch.shingle_set(2 * i), sketch.shingle_set(2 * i + 1)) for i in range(len(pairs))]
    )
    assert np.allclose(exact, truth)  # stored shingle sets give the true Jaccard
    errors = np.abs(estimates - truth)
    assert errors.mean() < 0.03 and errors.max() < 0.15  # sd is sqrt(J(1-J)/256) <= 0.031


def test_normalisation_levels():
    exact = tn.normalize_exact(["Cafe\u0301  STRASSE\n", "Café straße", None])
    assert exact.to_pylist() == ["café strasse", "café strasse", None]
    keys = tn.exact_keys(exact)
    assert (keys[0] == keys[1]).all() and not (keys[0] == keys[2]).all()
    kept_case = tn.normalize_exact(["A  b"], casefold=False, collapse_whitespace=False)
    assert kept_case.to_pylist() == ["A  b"]
    words = tn.word_tokens(pa.array(["Hello, world! It's «2024»…  —"])).to_pylist()
    assert words == [["hello", "world", "it's", "2024", ""]]  # "" (only punctuation) is skipped when hashing


def test_char_ngrams_compare_texts_without_spaces():
    sketcher = TextSketcher(num_perm=128, ngram=3, char_ngrams=True)
    same = "東京都の天気は晴れです今日はとても暖かい"
    sketch = sketcher.sketch([same, same + "ね", "まったく別の文章"])
    assert estimated_jaccard(sketch.signatures[0], sketch.signatures[1]) > 0.8
    assert estimated_jaccard(sketch.signatures[0], sketch.signatures[2]) < 0.2


def _codepoints_per_text(normalized: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The earlier per-text definition: non-empty words joined by single spaces, as UTF-32 code points."""
    texts = [" ".join(w for w in words if w) if words else "" for words in tn.word_tokens(normalized).to_pylist()]
    parts = [np.frombuffer(t.encode("utf-32-le"), "<u4") for t in texts]
    return np.concatenate(parts).astype(np.uint64), np.array([len(p) for p in parts], np.int64)


def test_char_codepoints_equal_the_per_text_definition():
    import random

    rng = random.Random(4)
    pieces = [
        "Hello,",
        "world!",
        "«déjà»",
        "vu",
        "—",
        "東京タワー",
        "🎉🎉",
        "ß",
        "ǅ",
        "e\u0301",
        "...",
        "!!!",
        "x",
        "Ωμέγα",
        "नमस्ते",
        "مرحبا",
        "\t",
        "\n\n",
        "“quoted”",
        "end.",
    ]
    texts = [" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(300)]
    texts[::37] = [None] * len(texts[::37])
    texts[5], texts[6] = "", "  ... !!! — "
    normalized = tn.normalize_exact(texts)
    for batch in (normalized, normalized.slice(3, 120), normalized.slice(0, 0)):
        values, counts = tn.char_codepoints(batch)
        expected_values, expected_counts = _codepoints_per_text(batch) if len(batch) else (np.empty(0), np.empty(0))
        assert np.array_equal(values, expected_values) and np.array_equal(counts, expected_counts)
        assert values.dtype == np.uint64 and counts.dtype == np.int64
    assert list(tn.char_codepoints(normalized)[1][5:7]) == [0, 0]  # empty, and punctuation only


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="num_perm"):
        MinHasher(num_perm=1)
    with pytest.raises(ValueError, match="ngram"):
        TextSketcher(ngram=0)
