"""The ``reference`` modes of the text heuristics, on texts whose answers are worked out by hand.

Words under ``datatrove`` are spaCy's English tokens (punctuation tokens included): "cat," is the two
tokens "cat" and ",". The comments give each count; ``bench/filter_agreement.py`` checks the modes
against datatrove's own filters on real text.
"""

import random
from collections import Counter

import pyarrow as pa
import pytest

from fusionforge.filters.text.c4 import C4Lines, c4_clean
from fusionforge.filters.text.fineweb import FineWebQuality, fineweb_scores, treebank_word_counts
from fusionforge.filters.text.gopher_quality import GopherQuality, datatrove_gopher_quality_scores
from fusionforge.filters.text.gopher_repetition import GopherRepetition, datatrove_repetition_scores
from fusionforge.filters.text.punkt_sentences import count_sentences, punkt_tokenizer
from fusionforge.filters.text.spacy_words import SpacyWords, english_tokenizer, sentences_per_piece, simple_tokens
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency


def _texts(*texts: str) -> pa.Array:
    return pa.array(list(texts), pa.large_string())


def _reasons(stage, make_batch, make_record, *texts: str) -> list:
    out = stage(make_batch([make_record(f"t/{i}", t) for i, t in enumerate(texts)]))
    return out.column(S.DROP_REASON).to_pylist()


@pytest.mark.parametrize(
    ("stage", "mode"),
    [(GopherQuality, "c4"), (GopherRepetition, "fineweb-2024"), (C4Lines, "fineweb-2024"), (FineWebQuality, "c4")],
)
def test_a_mode_the_stage_lacks_is_a_config_error_naming_stage_and_modes(stage, mode):
    with pytest.raises(ConfigError, match=rf"{stage.name}: reference must be one of \[.*'fusionforge'.*\]"):
        stage(reference=mode)
    with pytest.raises(ConfigError, match="'datatrove'"):
        stage(reference="Datatrove")


def test_without_spacy_the_datatrove_mode_says_what_to_install(monkeypatch):
    import sys

    from fusionforge.filters.text import spacy_words

    monkeypatch.setattr(spacy_words, "_nlp", None)
    monkeypatch.setitem(sys.modules, "spacy", None)
    with pytest.raises(MissingDependency, match=r"fusionforge\[reference\]"):
        GopherQuality(reference="datatrove")
    GopherQuality()  # the default mode never needs spaCy
    C4Lines(reference="c4")
    FineWebQuality(reference="fineweb-2024")


# --- spaCy's words, as datatrove splits them


def test_spacy_words_split_off_punctuation_and_keep_special_cases():
    tokens = SpacyWords().tokens(["The cat, (really) sat.", "Don't stop e.g. now"]).words()
    from fusionforge.filters.text import spacy_words

    strings = [spacy_words._memory.strings[i] for i in tokens.ids]
    assert strings == ["The", "cat", ",", "(", "really", ")", "sat", ".", "Do", "n't", "stop", "e.g.", "now"]
    assert tokens.count().tolist() == [8, 5]


def test_simple_chunks_are_split_by_rule_only_where_spacy_would_agree():
    specials = {"Mr.": None, "cannot": None}
    assert simple_tokens("word,", specials) == ["word", ","]
    assert simple_tokens("(word.", specials) == ["(", "word", "."]  # "." after a lower-case letter
    assert simple_tokens("USA.", specials) == ["USA", "."]  # "." after two capitals
    assert simple_tokens("aB.", specials) is None  # "." stays on: left to spaCy
    assert simple_tokens("Mr.", specials) is None and simple_tokens("cannot", specials) is None
    assert simple_tokens("x86", specials) == ["x86"] and simple_tokens("utf8_decode", specials) == ["utf8_decode"]
    assert simple_tokens("10km", specials) is None  # a unit after a number: left to spaCy
    assert simple_tokens("well-known.", specials) == ["well", "-", "known", "."]
    assert simple_tokens("A-Z.", specials) is None  # one capital before ".": no suffix
    assert simple_tokens("a-z.", {"z.": None}) is None  # spaCy would merge "z" "." into the special "z."


def test_simple_chunks_with_runs_of_marks_and_numbers_are_spacys_own_tokens():
    # A sample of marks (0-2 opening, 0-2 closing, a last ".") around words, identifiers, hyphenated
    # words, units, numbers and special cases; every chunk the rule takes must be tokenised as spaCy does.
    import spacy

    nlp = spacy.blank("en")
    opening, closing = ["", *'(["`'], ["", *",;:!?)]}\"'`"]
    cores = ["word", "WORD", "aB", "x86", "a_b", "s", "km", "10km", "-5", "+5", "3.10.0", "1.5e+10", "-3E-49"]
    cores += ["1e5", "well-known", "A-Z", "cannot", "Mr", "U.S", "e.g", "Inc", "n"]
    rng = random.Random(3)
    taken = 0
    for _ in range(2500):
        chunk = "".join(rng.choice(opening) for _ in range(2)) + rng.choice(cores)
        chunk += "".join(rng.choice(closing) for _ in range(2)) + rng.choice(["", "."])
        tokens = simple_tokens(chunk, nlp.tokenizer.rules)
        if tokens is not None:
            taken += 1
            assert tokens == [t.text for t in nlp.tokenizer(chunk)], chunk
    assert taken > 1500  # the rule takes most of them


def test_a_word_of_letters_of_any_script_is_one_spacy_token():
    # Letters (str.isalpha) sampled over every script up to U+2FFFF, alone, inside a word and at its edges.
    import spacy

    nlp = spacy.blank("en")
    letters = [chr(c) for c in range(0x80, 0x30000, 7) if chr(c).isalpha()]
    assert len(letters) > 15_000
    for c in letters[::3]:
        for word in (c, "a" + c + "b", c + "x", "ß" + c):
            assert simple_tokens(word, nlp.tokenizer.rules) == [t.text for t in nlp.tokenizer(word)] == [word]
    assert simple_tokens("cannot", nlp.tokenizer.rules) is None  # a special case stays spaCy's


def test_the_suffix_search_on_a_word_s_tail_finds_what_spacy_finds_on_the_whole_word():
    import spacy

    own = spacy.blank("en").tokenizer.suffix_search
    ours = english_tokenizer().tokenizer.suffix_search
    endings = ["", ".", "...", "." * 20, "km", "5km", "5mbar", "5اكواب", "°F.", "AB.", "ab.", "'s", "’S", ")"]
    endings += ["),", "$", "5$", "5€", "5%", "…", "x_", "9", "e", "é", "©", "5m²", "—", "»", "」", "5+", "a+"]
    endings += ["\x00", "-", "/", "=", "@", "^", "|", "~", "¢", "(s", "'t", "5c", "5u", "5o"]
    assert ours("") is None and own("") is None
    for stem in ("a", "word" * 3, "1234567890" * 3, "x." * 12, "." * 30, "Ab" * 9):
        for ending in endings:
            for pad in range(0, 20, 3):
                text = "q" * pad + stem + ending
                mine, theirs = ours(text), own(text)
                assert (mine and (mine.group(), len(text) - len(mine.string) + mine.start())) == (
                    theirs and (theirs.group(), theirs.start())
                ), text


def test_sentencizer_counts():
    # spaCy's sentencizer starts a sentence at a word after ". ! ?" tokens; "e.g." is one token, no end.
    lines = ["First part. Second part! Third?", "We use e.g. five words here.", "One.  Two"]
    # line 3: "One" "." "  " "Two": the whitespace token after "." starts the second sentence.
    counts = sentences_per_piece(SpacyWords().tokens(lines, whitespace=True))
    assert counts.tolist() == [3, 1, 2]


# --- Gopher quality


CAT = "The cat, the dog, the rat, and the bird."  # 13 tokens: 9 words + 3 commas + "."


def test_gopher_quality_datatrove_counts_punctuation_tokens_in_the_alphabetic_ratio(make_batch, make_record):
    text = " ".join([CAT] * 6)  # 78 tokens, 54 of them words
    stats = {k: v[0] for k, v in datatrove_gopher_quality_scores(_texts(text)).items()}
    assert stats["words"] == 54  # tokens with a non-punctuation character
    assert stats["alpha_words_ratio"] == pytest.approx(54 / 78)  # 0.69 < 0.8
    assert stats["mean_word_length"] == pytest.approx((8 * 3 + 4) / 9)  # The cat the dog the rat and the bird
    assert stats["stop_words"] == 2  # distinct and case-sensitive: "the", "and" ("The" is not "the")
    assert _reasons(GopherQuality(reference="datatrove"), make_batch, make_record, text) == [
        "text_gopher_quality_v1:few_alphabetic_words"
    ]
    assert _reasons(GopherQuality(), make_batch, make_record, text) == [None]  # 54 of 54 words have a letter


def test_gopher_quality_datatrove_counts_distinct_stop_words_case_sensitively(make_batch, make_record):
    # 60 words, every stop word "THE"/"The" or "the" once: one distinct lower-case stop word.
    text = " ".join(["The"] * 29 + ["THE"] * 29 + ["the", "Sun"])
    assert datatrove_gopher_quality_scores(_texts(text))["stop_words"].tolist() == [1]
    assert _reasons(GopherQuality(reference="datatrove"), make_batch, make_record, text) == [
        "text_gopher_quality_v1:few_stop_words"
    ]
    assert _reasons(GopherQuality(), make_batch, make_record, text) == [None]  # 59 case-folded occurrences


def test_gopher_quality_datatrove_lines_are_splitlines_with_blank_ones():
    text = "- one item here\n\n- two items here\r\n- three\x0bfour"
    # splitlines(): "- one item here", "", "- two items here", "- three", "four": 3 bullets of 5 lines.
    stats = datatrove_gopher_quality_scores(_texts(text))
    assert stats["bullet_lines_ratio"].tolist() == [pytest.approx(3 / 5)]


# --- Gopher repetition


def test_gopher_repetition_datatrove_counts_a_top_ngram_seen_once():
    stats = {k: v[0] for k, v in datatrove_repetition_scores(_texts("hello world")).items()}
    assert stats["top_2gram_char_frac"] == pytest.approx(11 / 11)  # "hello world" once, 11 of 11 characters


def test_gopher_repetition_datatrove_scans_duplicate_ngrams_as_datatrove():
    # 15 one-letter words; the scan adds a b c d e at 0..4, finds "abcde" again at word 5 (+5 characters,
    # jumps to word 10), finds it again (+5): 10 characters of a 29-character text.
    text = "a b c d e a b c d e a b c d e"
    scores = datatrove_repetition_scores(_texts(text), top_ngrams={}, dup_ngrams={5: 0.15})
    assert scores["dup_5gram_char_frac"].tolist() == [pytest.approx(10 / 29)]


def _datatrove_top_chars(words: list[str], n: int) -> float:
    """datatrove 0.10.1's get_n_grams + find_top_duplicate, transcribed: Counter.most_common(1) keeps the
    first-seen n-gram of a tie."""
    grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return float("nan")
    gram, count = Counter(grams).most_common(1)[0]
    return len(gram) * count


def _datatrove_all_dup_chars(words: list[str], n: int) -> int:
    """datatrove 0.10.1's find_all_duplicate, transcribed."""
    unique, chars, idx = set(), 0, 0
    while idx < len(words) - n + 1:
        gram = "".join(words[idx : idx + n])
        if gram in unique:
            chars += len(gram)
            idx += n
        else:
            unique.add(gram)
            idx += 1
    return chars


def test_gopher_repetition_datatrove_ngram_counts_follow_datatrove_on_random_repeats():
    # Words of 2-7 letters ending in "z", the only "z" (so joining them without spaces is as unambiguous
    # as with, and tied n-grams differ in length), documents of 0-80 words from a vocabulary of 6-40
    # words with copied runs pasted in: ties, overlaps, documents shorter than n, and documents that
    # repeat nothing at all.
    rng = random.Random(7)
    vocab = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(1, 6))) + "z" for _ in range(40)]
    texts = []
    for _ in range(300):
        words = [rng.choice(vocab[: rng.randint(6, 40)]) for _ in range(rng.randint(0, 60))]
        for _ in range(rng.randint(0, 3)):
            if len(words) > 2:
                i = rng.randrange(len(words) - 1)
                words[i:i] = words[i : i + rng.randint(2, 12)]
        texts.append(" ".join(words))
    top, dup = {2: 0.2, 3: 0.18, 4: 0.16, 7: 0.1}, {3: 0.1, 5: 0.15, 6: 0.14, 10: 0.1}
    scores = datatrove_repetition_scores(_texts(*texts), top_ngrams=top, dup_ngrams=dup)
    for i, text in enumerate(texts):
        words = text.split()
        for n in top:
            expected = _datatrove_top_chars(words, n) / len(text) if text else float("nan")
            assert scores[f"top_{n}gram_char_frac"][i] == pytest.approx(expected, nan_ok=True), (text, n)
        for n in dup:
            expected = _datatrove_all_dup_chars(words, n) / len(text) if text else float("nan")
            assert scores[f"dup_{n}gram_char_frac"][i] == pytest.approx(expected, nan_ok=True), (text, n)


def test_gopher_repetition_datatrove_drops_an_empty_text(make_batch, make_record):
    stage = GopherRepetition(reference="datatrove")
    assert _reasons(stage, make_batch, make_record, "", "hello world") == [
        "text_gopher_repetition_v1:empty",
        "text_gopher_repetition_v1:top_2gram",  # 11/11 > 0.20
    ]
    assert _reasons(GopherRepetition(), make_batch, make_record, "hello world") == [None]


def test_gopher_repetition_datatrove_lines_and_paragraphs_are_not_stripped():
    text = "Same line\nSame line \n\nSame line"
    # lines (split on runs of "\n"): "Same line", "Same line ", "Same line": 1 duplicate of 3, 9 characters;
    # paragraphs (split on 2+ "\n"): "Same line\nSame line ", "Same line": no duplicate.
    scores = datatrove_repetition_scores(_texts(text))
    assert scores["dup_line_frac"].tolist() == [pytest.approx(1 / 3)]
    assert scores["dup_line_char_frac"].tolist() == [pytest.approx(9 / len(text))]
    assert scores["dup_para_frac"].tolist() == [0.0]


# --- C4


def test_c4_mode_uses_c4_utils_thresholds_and_marks(make_batch, make_record):
    stage = C4Lines(reference="c4")
    assert (stage.min_sentences, stage.line_options["min_words_per_line"], stage.line_options["max_chars"]) == (
        3,
        5,
        190_000,
    )
    assert C4Lines(reference="c4", min_sentences=4).min_sentences == 4  # an explicit value wins
    five = "One two three four five."
    lines = [five, five.replace("five.", "five'"), "One two three four.", "Alpha beta gamma [1] delta.", five]
    result = c4_clean("\n".join(lines), reference="c4", min_words_per_line=5)
    # "'" is no end mark in c4_utils; 4 words are too few; the citation goes before words are counted.
    assert result.kept_lines == [five, five]
    assert result.removed["no_terminal_punct"] == 1 and result.removed["too_few_words"] == 2
    default = c4_clean("\n".join(lines), min_words_per_line=5)
    assert default.kept_lines == [five, five.replace("five.", "five'"), "Alpha beta gamma  delta.", five]
    assert _reasons(stage, make_batch, make_record, "\n".join([five] * 3), "\n".join([five] * 2)) == [
        None,
        "text_c4_lines_v2:too_few_sentences",
    ]


def test_c4_mode_drops_pages_over_190000_characters(make_batch, make_record):
    long = "\n".join(["This line is a sentence of words."] * 6000)  # 6,000 x 34 - 1 = 203,999 characters
    assert _reasons(C4Lines(reference="c4"), make_batch, make_record, long) == ["text_c4_lines_v2:too_long"]
    assert _reasons(C4Lines(), make_batch, make_record, long) == [None]


def test_citation_marks_are_lower_case_only_outside_the_default_mode():
    line = "Wikipedia says so[Edit] and that is all."
    assert c4_clean(line).kept_lines == ["Wikipedia says so and that is all."]
    assert c4_clean(line, reference="c4").kept_lines == [line]
    assert c4_clean(line, reference="datatrove").kept_lines == [line]


def test_c4_datatrove_counts_sentences_with_spacy(make_batch, make_record):
    lines = ["We use e.g. five words here."] * 5  # one spaCy sentence each ("e.g." is one token)
    stage = C4Lines(reference="datatrove")
    out = stage(make_batch([make_record("t/0", "\n".join(lines))]))
    assert out.column("text_c4_lines_v2__sentences").to_pylist() == [5]
    default = C4Lines()(make_batch([make_record("t/0", "\n".join(lines))]))
    assert default.column("text_c4_lines_v2__sentences").to_pylist() == [10]  # "e.g." + "here." per line


def test_c4_mode_counts_sentences_with_punkt_as_c4_did(make_batch, make_record):
    titled = "Dr. Smith and Mr. Jones met at noon today."  # punkt: "Dr." and "Mr." are abbreviations, 1
    two = "They talked about the plan. Then they left."  # punkt: 2
    assert count_sentences([titled, two, "x = 3.14 is the value here.", ""]) == [1, 2, 1, 0]
    stage = C4Lines(reference="c4")  # at least 3 sentences
    out = stage(make_batch([make_record("t/0", f"{titled}\n{two}"), make_record("t/1", f"{titled}\n{titled}")]))
    assert out.column("text_c4_lines_v2__sentences").to_pylist() == [3, 2]
    assert out.column(S.DROP_REASON).to_pylist() == [None, "text_c4_lines_v2:too_few_sentences"]
    default = C4Lines()(make_batch([make_record("t/1", f"{titled}\n{titled}")]))
    assert default.column("text_c4_lines_v2__sentences").to_pylist() == [6]  # "Dr." "Mr." "today." per line


def test_c4_mode_reads_a_punkt_tab_folder_and_refuses_a_bad_one(tmp_path):
    folder = tmp_path / "punkt_tab_english"
    folder.mkdir()
    (folder / "abbrev_types.txt").write_text("zq\n")  # "Zq." is an abbreviation in this model only
    for name in ("collocations.tab", "sent_starters.txt", "ortho_context.tab"):
        (folder / name).write_text("")
    line = "We met Zq. Brown at home."
    assert count_sentences([line]) == [2]
    assert count_sentences([line], model=str(folder)) == [1]
    assert C4Lines(reference="c4", punkt_model=str(folder)).punkt_model == str(folder)
    (folder / "ortho_context.tab").unlink()
    punkt_tokenizer.cache_clear()
    with pytest.raises(ConfigError, match="ortho_context.tab"):
        C4Lines(reference="c4", punkt_model=str(folder))
    with pytest.raises(ConfigError, match="not a folder"):
        C4Lines(reference="c4", punkt_model=str(tmp_path / "missing"))


def test_without_nltk_the_c4_mode_says_what_to_install(monkeypatch):
    import sys

    punkt_tokenizer.cache_clear()
    monkeypatch.setitem(sys.modules, "nltk.tokenize", None)
    with pytest.raises(MissingDependency, match=r"fusionforge\[reference\]"):
        C4Lines(reference="c4")
    C4Lines()  # the default mode never needs NLTK
    punkt_tokenizer.cache_clear()


# --- FineWeb

LONG = [f"Line {i} of this text is long enough to count as a full line" for i in range(25)]


def test_fineweb_modes_differ_on_a_punctuation_ratio_of_exactly_twelve_percent(make_batch, make_record):
    lines = [line + "." if i < 3 else line for i, line in enumerate(LONG)]  # 3 of 25 lines: 0.12
    text = "\n".join(lines)
    assert fineweb_scores(_texts(text))["line_punct_ratio"].tolist() == [pytest.approx(0.12)]
    drop = "text_fineweb_quality_v1:few_punctuated_lines"
    assert _reasons(FineWebQuality(), make_batch, make_record, text) == [drop]  # <= 0.12
    assert _reasons(FineWebQuality(reference="fineweb-2024"), make_batch, make_record, text) == [drop]
    assert _reasons(FineWebQuality(reference="datatrove"), make_batch, make_record, text) == [None]  # < 0.12


def test_fineweb_lines_under_each_mode():
    text = 'A line that ends well. \n\nIt ends 。\nA quote ends "\n'
    # lines: "A line that ends well. ", "", "It ends 。", 'A quote ends "', "" (after the final newline)
    fw = {m: fineweb_scores(_texts(text), reference=m)["line_punct_ratio"][0] for m in ("fusionforge", "fineweb-2024")}
    assert fw["fusionforge"] == pytest.approx(2 / 5)  # right-stripped: "well." and the quote
    assert fw["fineweb-2024"] == pytest.approx(1 / 5)  # the trailing space hides the "."
    datatrove = fineweb_scores(_texts(text), reference="datatrove")
    assert datatrove["lines"].tolist() == [3]  # blank lines are no lines
    assert datatrove["line_punct_ratio"].tolist() == [pytest.approx(1 / 3)]  # "。" is a terminal, '"' is not


def test_fineweb_datatrove_drops_a_text_without_a_non_blank_line(make_batch, make_record):
    assert _reasons(FineWebQuality(reference="datatrove"), make_batch, make_record, " \n\n") == [
        "text_fineweb_quality_v1:empty"
    ]


def test_treebank_word_counts_split_punctuation_and_clitics():
    # NLTK: Hello , world ! It 's ( really ) fine . -> 11 tokens; and "--" stays one token.
    assert treebank_word_counts(_texts("Hello, world! It's (really) fine.", "a -- b")).tolist() == [11, 3]


def test_spacy_words_are_spacys_own_tokens_on_mixed_text():
    import spacy

    text = (
        "Hello, world! It's 10km (e.g. U.S.) -- well-known a-z. foo_bar() x86 'quoted' cannot\n\n"
        "see http://example.com/a?b=c or 3.5e+10... Mr. O'Neil's \"A-Z.\" list: [1], {x: 2}; done."
    )
    # spaCy matches ": (" across the space and so leaves the second "(:" as "(" ":": context matters.
    context = "x (:class:`nn.Module`): (:class:`DeviceMesh`): y"
    from fusionforge.filters.text import spacy_words

    spacy_words.forget()  # tokenise everything afresh, simple chunks by rule and the rest by spaCy
    for _ in range(2):  # and again from what the process remembers
        tokens = SpacyWords().tokens([text, context]).words()
        for i, one in enumerate((text, context)):
            expected = [t.text for t in spacy.blank("en").tokenizer(one) if t.text.strip()]
            assert [spacy_words._memory.strings[k] for k in tokens.ids[tokens.docs == i]] == expected
