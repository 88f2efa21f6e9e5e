import numpy as np
import pytest
from fusionforge.filters.text.gopher_repetition import GopherRepetition, duplicated_ngram_chars, repetition_stats
from fusionforge.pipelines.core import schema as S

WORDS = ("amber birch cedar delta ember fjord grove harbor island jasper kelp lagoon meadow nectar orchard "
         "prairie quartz river summit tundra upland valley willow xenon yarrow zephyr").split()


def _unique_text(n_words: int, offset: int = 0) -> str:
    """Words that never repeat an n-gram (a different pair of words at every position)."""
    return " ".join(f"{WORDS[(i + offset) % 26]}{(i + offset) // 26}" for i in range(n_words))


def _reason(make_batch, make_record, text, **params):
    out = GopherRepetition(**params)(make_batch([make_record("t/0", text)]))
    return out.column(S.DROP_REASON)[0].as_py()


def test_a_text_without_repetition_is_kept(make_batch, make_record):
    text = "\n\n".join(_unique_text(40, 100 * i) for i in range(4))
    assert _reason(make_batch, make_record, text) is None
    stats = repetition_stats(text)
    assert stats["dup_para_frac"] == stats["dup_line_frac"] == 0.0
    assert stats["top_2gram_char_frac"] == 0.0 and stats["dup_5gram_char_frac"] == 0.0


@pytest.mark.parametrize(("text", "reason"), [
    ("\n\n".join([_unique_text(10, 0)] * 2 + [_unique_text(10, 50 * i) for i in range(1, 4)]),
     "text_gopher_repetition_v1:dup_para_frac"),  # 1 of 5 paragraphs repeats an earlier one: 0.2 > 0.15
    ("\n".join(["short line here"] * 4 + [_unique_text(60, 7)]), "text_gopher_repetition_v1:dup_line_frac"),
    ("\n".join([_unique_text(30, 0)] * 2 + [_unique_text(5, 40 + 5 * i) for i in range(10)]),
     "text_gopher_repetition_v1:dup_line_char_frac"),
    (_unique_text(60, 0) + " " + " ".join(["salt pepper"] * 30), "text_gopher_repetition_v1:top_2gram"),
    (_unique_text(60, 0) + " " + _unique_text(20, 300) + " " + _unique_text(20, 300),
     "text_gopher_repetition_v1:dup_5gram"),
])
def test_each_repetition_rule_drops_with_its_reason(make_batch, make_record, text, reason):
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
    lengths = np.array([1] * 8)
    hashes = np.array([1, 2, 1, 2, 3, 4], dtype=np.uint64)
    assert duplicated_ngram_chars(hashes, lengths, 3) == 6


def test_thresholds_are_parameters(make_batch, make_record):
    text = _unique_text(60, 0) + " " + " ".join(["salt pepper"] * 30)
    assert _reason(make_batch, make_record, text, top_ngrams={2: 0.9, 3: 0.9, 4: 0.9}, dup_ngrams={}) is None
    out = GopherRepetition(top_ngrams={"2": 0.9}, dup_ngrams={})(make_batch([make_record("t/0", text)]))
    assert "text_gopher_repetition_v1__top_2gram_char_frac" in out.column_names
    assert "text_gopher_repetition_v1__top_3gram_char_frac" not in out.column_names
