import json

import pytest

from fusionforge.filters.text.fasttext_train import TrainConfig, train_fasttext
from fusionforge.filters.text.lang_id import LanguageId
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError

SENTENCES = {
    "en": [
        "The weather was cold this morning, so we stayed inside and read the newspaper together.",
        "She has been working at the hospital for almost twenty years and still loves her job.",
    ],
    "de": [
        "Das Wetter war heute Morgen kalt, deshalb sind wir drinnen geblieben und haben Zeitung gelesen.",
        "Sie arbeitet seit fast zwanzig Jahren im Krankenhaus und liebt ihre Arbeit immer noch.",
    ],
    "fr": [
        "Il faisait froid ce matin, alors nous sommes restés à la maison pour lire le journal ensemble.",
        "Elle travaille à l'hôpital depuis presque vingt ans et elle aime toujours son métier.",
    ],
    "es": [
        "Hacía frío esta mañana, así que nos quedamos en casa leyendo el periódico juntos.",
        "Ella lleva casi veinte años trabajando en el hospital y todavía le encanta su trabajo.",
    ],
    "it": [
        "Stamattina faceva freddo, quindi siamo rimasti in casa a leggere il giornale insieme.",
        "Lavora in ospedale da quasi vent'anni e ama ancora il suo lavoro.",
    ],
    "pt": [
        "Estava frio hoje de manhã, então ficamos em casa lendo o jornal juntos.",
        "Ela trabalha no hospital há quase vinte anos e ainda adora o seu trabalho.",
    ],
    "nl": [
        "Het was vanochtend koud, dus we bleven binnen en lazen samen de krant.",
        "Ze werkt al bijna twintig jaar in het ziekenhuis en houdt nog steeds van haar werk.",
    ],
    "ru": [
        "Сегодня утром было холодно, поэтому мы остались дома и вместе читали газету.",
        "Она работает в больнице почти двадцать лет и до сих пор любит свою работу.",
    ],
    "ja": [
        "今朝は寒かったので、私たちは家にいて一緒に新聞を読みました。",
        "彼女は二十年近く病院で働いていて、今でも仕事が大好きです。",
    ],
}


def _rows(make_record):
    return [make_record(f"t/{lang}{i}", text) for lang, texts in SENTENCES.items() for i, text in enumerate(texts)]


def test_bundled_fallback_identifies_real_sentences_in_nine_languages(make_batch, make_record):
    out = LanguageId()(make_batch(_rows(make_record)))
    expected = [lang for lang, texts in SENTENCES.items() for _ in texts]
    assert out.column("text_lang_id_v1__lang").to_pylist() == expected
    assert all(p > 0.9 for p in out.column("text_lang_id_v1__score").to_pylist())
    assert set(out.column("text_lang_id_v1__detector").to_pylist()) == {"py3langid-0.4.0"}
    assert out.column(S.DROP_REASON).null_count == out.num_rows  # no languages= given: detect only


def test_keeping_only_some_languages_and_blank_text(make_batch, make_record):
    rows = _rows(make_record) + [make_record("t/blank", "   "), make_record("t/cap", "a red circle", modality="image")]
    out = LanguageId(languages=["en", "de"])(make_batch(rows))
    reasons = dict(zip(out.column(S.ID).to_pylist(), out.column(S.DROP_REASON).to_pylist()))
    assert reasons["t/en0"] is None and reasons["t/de1"] is None
    assert reasons["t/fr0"] == "text_lang_id_v1:other_language"
    assert reasons["t/blank"] == "text_lang_id_v1:undetermined_language"
    assert reasons["t/cap"] is None  # captions are not judged unless their modality is listed
    assert (
        LanguageId(min_score=1.01)(make_batch(rows[:1])).column(S.DROP_REASON)[0].as_py()
        == "text_lang_id_v1:low_confidence"
    )


def test_a_fasttext_language_model_given_by_path_is_used_and_named(tmp_path, make_batch, make_record):
    lines = []
    for lang, texts in SENTENCES.items():
        for text in texts:
            for shift in range(20):  # small variations of each sentence, so the model has something to learn
                words = text.split()
                lines.append(
                    {
                        "text": " ".join(words[shift % len(words) :] + words[: shift % len(words)]),
                        "lang": f"{lang}_Test",
                    }
                )
    data = tmp_path / "lang.jsonl"
    data.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines))
    model = tmp_path / "lid-test.bin"
    train_fasttext(
        TrainConfig(
            inputs=(str(data),),
            output=str(model),
            label_field="lang",
            bucket=50_000,
            dim=16,
            epoch=20,
            valid_fraction=0.0,
            min_count=1,
        )
    )
    out = LanguageId(model_path=str(model), languages=["de_Test"])(make_batch(_rows(make_record)))
    langs = out.column("text_lang_id_v1__lang").to_pylist()
    assert langs[0] == "en_Test" and langs[2] == "de_Test" and langs[-1] == "ja_Test"
    assert set(out.column("text_lang_id_v1__detector").to_pylist()) == {"fasttext:lid-test.bin"}
    kept = [rid for rid, r in zip(out.column(S.ID).to_pylist(), out.column(S.DROP_REASON).to_pylist()) if r is None]
    assert kept == ["t/de0", "t/de1"]
    with pytest.raises(ConfigError, match="does not exist"):
        LanguageId(model_path=str(tmp_path / "missing.bin"))
