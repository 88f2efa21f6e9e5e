import pytest

from fusionforge.filters.text.gopher_quality import GopherQuality
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError

GOOD = ("The river runs to the sea and the people of the town have walked with it for years. " * 6).strip()


def _judge(make_batch, make_record, texts, **params):
    batch = make_batch([make_record(f"t/{i}", text) for i, text in enumerate(texts)])
    out = GopherQuality(**params)(batch)
    return out.column(S.DROP_REASON).to_pylist(), out


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (GOOD, None),
        ("the and of to " * 5, "text_gopher_quality_v1:too_few_words"),
        ("the and of river " * 25_001, "text_gopher_quality_v1:too_many_words"),  # 100,004 words > 100,000
        ("the and of river " * 24_999, None),  # 99,996 words
        (("the and " + "a " * 60).strip(), "text_gopher_quality_v1:short_words"),
        ("the and " + "incomprehensibilities " * 60, "text_gopher_quality_v1:long_words"),
        (GOOD + " #tag" * 20, "text_gopher_quality_v1:too_many_hashes"),
        (GOOD + " wait..." * 20, "text_gopher_quality_v1:too_many_ellipses"),
        ("\n".join(["• the item of the list and more words here"] * 12), "text_gopher_quality_v1:bullet_lines"),
        (
            "\n".join(
                [f"the stories of the mountain villages continued and continued {i}..." for i in range(8)]
                + ["The ending of the journey and the homecoming."] * 4
            ),
            "text_gopher_quality_v1:ellipsis_lines",
        ),
        ("the and " + " ".join(["12345 678 90"] * 30), "text_gopher_quality_v1:few_alphabetic_words"),
        ("river city morning light people market window street garden " * 7, "text_gopher_quality_v1:few_stop_words"),
    ],
)
def test_each_rule_keeps_or_drops_with_its_own_reason(make_batch, make_record, text, reason):
    reasons, _ = _judge(make_batch, make_record, [text])
    assert reasons == [reason]


def test_scores_are_stored_for_every_judged_record(make_batch, make_record):
    _, out = _judge(make_batch, make_record, [GOOD, "x"])
    assert out.column("text_gopher_quality_v1__words").to_pylist() == [108, 1]  # 18 words x 6
    assert out.column("text_gopher_quality_v1__stop_words").to_pylist()[0] == 54  # the x4, to, and, of, have, with
    assert 3 < out.column("text_gopher_quality_v1__mean_word_length")[0].as_py() < 5
    assert out.column("text_gopher_quality_v1__alpha_words_ratio").to_pylist() == [1.0, 1.0]


def test_limits_can_be_changed_or_switched_off(make_batch, make_record):
    short = "the and of to the river flows"
    assert _judge(make_batch, make_record, [short])[0] == ["text_gopher_quality_v1:too_few_words"]
    assert _judge(make_batch, make_record, [short], min_words=5)[0] == [None]
    stopless = "river city morning light people market window street garden " * 7
    assert _judge(make_batch, make_record, [stopless], min_stop_words=None)[0] == [None]
    assert _judge(make_batch, make_record, [stopless], stop_words=["river", "city"])[0] == [None]


def test_captions_and_other_languages_are_not_judged(make_batch, make_record):
    rows = [
        make_record("a/0", "two red circles", modality="image"),
        make_record("a/1", "Der Fluss fliesst", text_lang_id_v1__lang="de"),
        make_record("a/2", "the and the of", text_lang_id_v1__lang="en"),
    ]
    out = GopherQuality(languages=["en"])(make_batch(rows))
    assert out.column(S.DROP_REASON).to_pylist() == [None, None, "text_gopher_quality_v1:too_few_words"]
    assert out.column("text_gopher_quality_v1__words").to_pylist() == [None, None, 4]


def test_languages_without_a_language_column_is_a_config_error(make_batch, make_record):
    with pytest.raises(ConfigError, match="text_lang_id_v1"):
        GopherQuality(languages=["en"])(make_batch([make_record("a/0", "text")]))
    with pytest.raises(ValueError, match="modalities"):
        GopherQuality(modalities=["audio"])
