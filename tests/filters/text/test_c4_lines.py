import hashlib

import pytest

from fusionforge.filters.text.c4 import C4Lines, c4_clean
from fusionforge.pipelines.core import schema as S

SENTENCES = [f"This is sentence number {i} of a long and careful paragraph." for i in range(6)]


def test_lines_failing_a_rule_are_removed_and_counted():
    lines = SENTENCES[:2] + [
        "A heading without punctuation",
        "Too short.",
        "Please enable JavaScript to view this page.",
        "We use cookies to improve the experience.",
        "Read our privacy policy for details.",
        "It trails off like this...",
        "A word " + "x" * 1001 + " too long.",
        "Wikipedia says so[1] and that is all.[citation needed]",
    ]
    result = c4_clean("\n".join(lines))
    assert result.kept_lines == SENTENCES[:2] + ["Wikipedia says so and that is all."]
    assert result.removed == {"long_word": 1, "no_terminal_punct": 2, "too_few_words": 1, "javascript": 1, "policy": 2}
    assert result.sentences == 3


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("\n".join(SENTENCES), None),
        ("\n".join(SENTENCES + ["Lorem ipsum dolor sit amet."]), "text_c4_lines_v2:lorem_ipsum"),
        ("\n".join(SENTENCES + ["Call it as f({x: 1}) with care."]), "text_c4_lines_v2:curly_bracket"),
        ("\n".join(SENTENCES + ["function f() { return 1; }"]), None),  # removed line (no final mark): not judged
        ("\n".join(SENTENCES + ["Lorem ipsum."]), None),  # removed line (too few words): not judged
        ("\n".join(SENTENCES + ["Enable JavaScript: run({x: 1}) here."]), None),  # removed for "javascript" first
        ("\n".join(SENTENCES[:4] + ["no punctuation here at all"] * 5), "text_c4_lines_v2:too_few_sentences"),
        (" ".join(SENTENCES[:5]), None),  # one line, five sentences
    ],
)
def test_document_rules(make_batch, make_record, text, reason):
    out = C4Lines()(make_batch([make_record("t/0", text)]))
    assert out.column(S.DROP_REASON).to_pylist() == [reason]


def test_kept_text_documents_are_rewritten_with_a_matching_hash(make_batch, make_record):
    text = "\n".join(["Menu", *SENTENCES, "Share this"])
    rows = [
        make_record("t/0", text),
        make_record("t/1", text, modality="interleaved"),
        make_record("t/2", "Menu\nShort."),
    ]
    out = C4Lines(modalities=["text", "interleaved"])(make_batch(rows))
    texts = out.column(S.TEXT).to_pylist()
    assert texts[0] == "\n".join(SENTENCES)
    assert texts[1] == text  # interleaved text mirrors its segments: judged, never rewritten
    assert texts[2] == "Menu\nShort."  # dropped records keep their text for inspection
    expected = hashlib.sha256(b"text\x00" + "\n".join(SENTENCES).encode()).hexdigest()
    assert out.column(S.CONTENT_HASH)[0].as_py() == expected
    assert out.column("text_c4_lines_v2__removed_no_terminal_punct").to_pylist() == [2, 2, 1]
    unchanged = C4Lines(rewrite_text=False)(make_batch(rows[:1]))
    assert unchanged.column(S.TEXT)[0].as_py() == text


def test_document_rules_stop_the_scan_where_c4_applies_them():
    # C4's order: long word, citations, final mark, words, lorem ipsum, javascript, "{", policy.
    text = "\n".join(["This line has a brace { inside it.", "Lorem ipsum dolor sit amet today."])
    first = c4_clean(text)
    assert (first.curly_bracket, first.lorem_ipsum) == (True, False)  # the first failing line decides
    assert c4_clean(text, filter_curly_bracket=False).lorem_ipsum is True


def test_rules_can_be_switched_off():
    text = "\n".join(["Heading", "Enable javascript please now.", *SENTENCES])
    kept = c4_clean(text, filter_no_terminal_punct=False, filter_javascript=False, min_words_per_line=None).kept_lines
    assert kept[:2] == ["Heading", "Enable javascript please now."]
