"""Decontamination: planted eval n-grams and eval images are caught, clean records and near misses are kept."""

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fusionforge.filters.decontam.decontaminate import Decontaminate
from fusionforge.filters.decontam.eval_files import split_spec
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dedup"))

from media_fixtures import crop_fraction, encoded, picture  # noqa: E402

QUESTION = (
    "A bakery sells muffins in boxes of six and cookies in boxes of eight; how many boxes does Ana need "
    "to buy to get exactly forty eight pastries of each kind for the school fair?"
)
PASSAGE = "The river delta shifted west after the flood of 1927, leaving the old harbour dry for a decade"
TRIVIA = "Which planet in the solar system has the longest day relative to its year length"


@pytest.fixture
def evals(tmp_path):
    (tmp_path / "gsm.jsonl").write_text(
        json.dumps({"id": "q-17", "question": QUESTION, "answer": "14"}) + "\n" + "{not json\n", encoding="utf-8"
    )
    (tmp_path / "passages.txt").write_text(f"\n{PASSAGE}\n", encoding="utf-8")
    pq.write_table(pa.table({"question": [TRIVIA], "choices": [["Venus", "Mars"]]}), tmp_path / "trivia.parquet")
    images = tmp_path / "eval_images"
    images.mkdir()
    picture(1).save(images / "cat.png")
    picture(2).save(images / "dog.png")
    return [
        f"gsm8k={tmp_path / 'gsm.jsonl'}",
        str(tmp_path / "passages.txt"),
        f"trivia={tmp_path / 'trivia.parquet'}",
    ], [f"vqa={images}"]


def words(text, start, count):
    return " ".join(text.split()[start : start + count])


def image_record(make_record, rid, data):
    item = {
        "kind": "image",
        "uri": None,
        "offset": None,
        "size": len(data),
        "bytes": data,
        "sha256": rid,
        "format": "jpeg",
    }
    return make_record(rid, "a photo", modality="image", media=[item])


def test_planted_ngrams_and_images_are_caught_and_the_rest_kept(evals, make_batch, make_record):
    texts, images = evals
    stage = Decontaminate(evals=texts, eval_images=images)
    copy = encoded(crop_fraction(picture(1), left=0.03, top=0.02).resize((200, 200)), "JPEG", quality=80)
    rows = [
        make_record("d/copied", f"Homework help! {words(QUESTION, 3, 13).upper()} -- answers below."),
        make_record("d/near", f"Homework help! {words(QUESTION, 3, 12)} and then something else entirely."),
        make_record("d/clean", "A bakery down the street sells the best muffins I have ever eaten, honestly."),
        make_record("d/passage", f"From the archive: {PASSAGE.replace(',', ';')}."),
        make_record("d/trivia", f"Quiz night: {TRIVIA}?"),  # 16 words: the whole eval text matches
        image_record(make_record, "i/copy", copy),
        image_record(make_record, "i/other", encoded(picture(7), "JPEG", quality=90)),
        image_record(make_record, "i/broken", b"\xff\xd8 not really a jpeg"),
    ]
    out = stage(make_batch(rows))
    reasons = dict(zip(out.column(S.ID).to_pylist(), out.column(S.DROP_REASON).to_pylist()))
    assert reasons == {
        "d/copied": "decontaminate_v1:ngram:gsm8k",
        "d/near": None,
        "d/clean": None,
        "d/passage": "decontaminate_v1:ngram:passages",
        "d/trivia": "decontaminate_v1:ngram:trivia",
        "i/copy": "decontaminate_v1:image:vqa",
        "i/other": None,
        "i/broken": None,
    }
    column = {name: out.column(f"decontaminate_v1__{name}").to_pylist() for name in ("eval_sample", "ngram")}
    assert column["eval_sample"][:5] == ["q-17", None, None, "passages.txt:2", "trivia.parquet:0"]
    assert column["ngram"][0] == words(QUESTION, 3, 13).lower().replace(";", "").replace("?", "")
    assert out.column("decontaminate_v1__ngram_hits").to_pylist()[:3] == [1, 0, 0]
    assert out.column("decontaminate_v1__image_eval_sample").to_pylist()[5] == "cat.png"
    assert out.column("decontaminate_v1__image_distance").to_pylist()[5] <= 8
    assert out.column("decontaminate_v1__contaminated").to_pylist() == [
        True,
        False,
        False,
        True,
        True,
        True,
        False,
        None,
    ]
    assert out.column(S.ERROR).to_pylist()[7].startswith("decontaminate_v1:undecodable_image")
    assert stage.texts.stats["gsm8k"] == {
        "path": texts[0].split("=", 1)[1],
        "samples": 1,
        "indexed": 1,
        "too_short": 0,
        "unreadable": 1,
    }


def test_mark_keeps_everything_and_the_ngram_size_is_a_setting(evals, make_batch, make_record):
    texts, _ = evals
    batch = make_batch([make_record("d/near", f"Homework help! {words(QUESTION, 3, 12)} and more.")])
    marked = Decontaminate(evals=texts, ngram=12, action="mark")(batch)
    assert marked.column(S.DROP_REASON).to_pylist() == [None]
    assert marked.column("decontaminate_v1__eval_set").to_pylist() == ["gsm8k"]


def test_settings_and_eval_files_are_checked_first(tmp_path):
    with pytest.raises(ConfigError, match="give evals"):
        Decontaminate.check()
    with pytest.raises(ConfigError, match="action must be one of"):
        Decontaminate.check(evals=["x.jsonl"], action="delete")
    with pytest.raises(ConfigError, match="max_distance"):
        Decontaminate.check(eval_images=["x"], max_distance=65)
    with pytest.raises(ConfigError, match="no input files"):
        Decontaminate.check(evals=[str(tmp_path / "missing.jsonl")])
    assert split_spec("mmlu=/data/test.jsonl.gz") == ("mmlu", "/data/test.jsonl.gz")
    assert split_spec("/data/test.jsonl.gz") == ("test", "/data/test.jsonl.gz")
    with pytest.raises(ConfigError, match="may only hold"):
        split_spec("my set=/x.jsonl")
