import numpy as np
import pyarrow as pa
import pytest

from fusionforge.filters.text.gopher_repetition import GopherRepetition, repetition_scores, repetition_stats
from fusionforge.pipelines.core import schema as S

WORDS = (
    "amber birch cedar delta ember fjord grove harbor island jasper kelp lagoon meadow nectar orchard "
    "prairie quartz river summit tundra upland valley willow xenon yarrow zephyr"
).split()


def _unique_text(n_words: int, offset: int = 0) -> str:
    """Words that never repeat an n-gram (a different pair of words at every position)."""
    return " ".join(f"{WORDS[(i + offset) % 26]}{(i + offset) // 26}" for i in range(n_words))


def _interleaved(gram: str, repeats: int, between: int) -> str:
    """``gram`` repeated with ``between`` fresh words after each copy: only that n-gram and its parts repeat."""
    return " ".join(f"{gram} {_unique_text(between, 200 + between * i)}" for i in range(repeats))


def _reason(make_batch, make_record, text, **params):
    out = GopherRepetition(**params)(make_batch([make_record("t/0", text)]))
    return out.column(S.DROP_REASON)[0].as_py()


def test_a_text_without_repetition_is_kept(make_batch, make_record):
    text = "\n\n".join(_unique_text(40, 100 * i) for i in range(4))
    assert _reason(make_batch, make_record, text) is None
    stats = repetition_stats(text)
    assert stats["dup_para_frac"] == stats["dup_line_frac"] == 0.0
    assert stats["top_2gram_char_frac"] == 0.0 and stats["dup_5gram_char_frac"] == 0.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "\n\n".join([_unique_text(10, 0)] * 2 + [_unique_text(10, 50 * i) for i in range(1, 4)]),
            "text_gopher_repetition_v1:dup_para_frac",
        ),  # 1 of 5 paragraphs repeats an earlier one: 0.2 > 0.15
        ("\n".join(["short line here"] * 4 + [_unique_text(60, 7)]), "text_gopher_repetition_v1:dup_line_frac"),
        (
            "\n".join([_unique_text(30, 0)] * 2 + [_unique_text(5, 40 + 5 * i) for i in range(10)]),
            "text_gopher_repetition_v1:dup_line_char_frac",
        ),
        (_unique_text(60, 0) + " " + " ".join(["salt pepper"] * 30), "text_gopher_repetition_v1:top_2gram"),
        (
            _unique_text(60, 0) + " " + _unique_text(20, 300) + " " + _unique_text(20, 300),
            "text_gopher_repetition_v1:dup_5gram",
        ),
        # 1 of 9 paragraphs repeats (0.11 <= 0.15), but it is long: 39% of the characters > 0.20
        (
            "\n\n".join([_unique_text(40, 0)] * 2 + [_unique_text(3, 100 + 5 * i) for i in range(7)]),
            "text_gopher_repetition_v1:dup_para_char_frac",
        ),
        ("\n\n".join([_unique_text(5, 0)] * 2 + [_unique_text(12, 100 + 12 * i) for i in range(7)]), None),  # 5%
        # "salt pepper thyme" x8: its 3-gram covers 24% > 0.18 while its 2-grams cover 16% <= 0.20
        (_interleaved("salt pepper thyme", 8, 7), "text_gopher_repetition_v1:top_3gram"),
        (_interleaved("salt pepper thyme", 8, 12), None),
        # a repeated 4-gram: 21% > 0.16, its 3-grams 15.5% <= 0.18 and 2-grams 10% <= 0.20
        (_interleaved("salt pepper thyme basil", 8, 11), "text_gopher_repetition_v1:top_4gram"),
        (_interleaved("salt pepper thyme basil", 8, 16), None),
    ],
)
def test_each_repetition_rule_keeps_or_drops_with_its_reason(make_batch, make_record, text, reason):
    assert _reason(make_batch, make_record, text, max_dup_para_frac=0.15) == reason


def test_paragraph_and_line_fractions_count_repeats_after_the_first_copy():
    text = "alpha beta\n\nalpha beta\n\nalpha beta\n\ngamma delta"
    stats = repetition_stats(text)
    assert stats["dup_para_frac"] == 0.5  # 2 of 4 paragraphs repeat an earlier one
    assert stats["dup_para_char_frac"] == pytest.approx(20 / len(text))
    assert stats["dup_line_frac"] == 0.5


def test_top_ngram_counts_length_times_occurrences_and_dup_ngrams_count_each_word_once():
    text = "a b a b a b x y"
    stats = repetition_stats(text, top_ngrams={2: 0.2}, dup_ngrams={3: 0.1})
    assert stats["top_2gram_char_frac"] == pytest.approx(3 * 2 / 8)  # "a b" x3, 2 word chars each, of 8
    assert stats["dup_3gram_char_frac"] == pytest.approx(6 / 8)  # a b a b a b covered, x y not
    batch = repetition_scores(
        pa.array(["a b a b a b x y", "", "x y z", "a b a b a b x y"], pa.large_string()),
        top_ngrams={2: 0.2},
        dup_ngrams={3: 0.1},
    )
    assert batch["dup_3gram_char_frac"].tolist()[0] == batch["dup_3gram_char_frac"].tolist()[3] == 6 / 8
    assert np.isnan(batch["dup_3gram_char_frac"][1]) and batch["dup_3gram_char_frac"][2] == 0.0  # per document


def test_thresholds_are_parameters(make_batch, make_record):
    text = _unique_text(60, 0) + " " + " ".join(["salt pepper"] * 30)
    assert _reason(make_batch, make_record, text, top_ngrams={2: 0.9, 3: 0.9, 4: 0.9}, dup_ngrams={}) is None
    out = GopherRepetition(top_ngrams={"2": 0.9}, dup_ngrams={})(make_batch([make_record("t/0", text)]))
    assert "text_gopher_repetition_v1__top_2gram_char_frac" in out.column_names
    assert "text_gopher_repetition_v1__top_3gram_char_frac" not in out.column_names


def _plain_reference(text: str, n: int, kind: str) -> float:
    """The n-gram rules written the obvious way, one document at a time."""
    from collections import Counter

    words = text.split()
    total = sum(len(w) for w in words)
    if not words:
        return float("nan")
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    if not grams:
        return 0.0
    if kind == "top":
        best = max(counts.values())
        gram = next(g for g in grams if counts[g] == best)
        return sum(len(w) for w in gram) * best / total if best > 1 else 0.0
    covered = [False] * len(words)
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[i : i + n] = [True] * n
    return sum(len(w) for w, c in zip(words, covered) if c) / total


def test_the_batch_computation_matches_a_plain_per_document_one():
    import random

    rng = random.Random(0)
    texts = [" ".join(rng.choice("a bb c dd e ff".split()) for _ in range(rng.randint(0, 40))) for _ in range(200)]
    scores = repetition_scores(pa.array(texts, pa.large_string()))
    for i, text in enumerate(texts):
        for n in (2, 3, 4):
            assert scores[f"top_{n}gram_char_frac"][i] == pytest.approx(_plain_reference(text, n, "top"), nan_ok=True)
        for n in range(5, 11):
            assert scores[f"dup_{n}gram_char_frac"][i] == pytest.approx(_plain_reference(text, n, "dup"), nan_ok=True)
