import json
import random
from pathlib import Path

import numpy as np
import pytest

from fusionforge.filters.text.fasttext_model import load_fasttext, predict_batch
from fusionforge.filters.text.fasttext_score import FastTextScore
from fusionforge.filters.text.fasttext_train import TrainConfig, train_fasttext
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError, RunError

SCIENCE = "physics energy quantum particle experiment theory measurement laboratory data hypothesis".split()
SPORT = "football goal match player team score league coach stadium season".split()
GLUE = "the a of and in with for on".split()


def _line(rng: random.Random, vocab: list[str]) -> str:
    return " ".join(rng.choice(vocab if rng.random() < 0.6 else GLUE) for _ in range(rng.randint(8, 20)))


@pytest.fixture(scope="module")
def quality_model(tmp_path_factory):
    """A two-class model trained here from two files (LABEL=PATH inputs), plus held-out lines."""
    folder = tmp_path_factory.mktemp("ft")
    rng = random.Random(1)
    for label, vocab in (("hq", SCIENCE), ("lq", SPORT)):
        rows = [{"text": _line(rng, vocab), "id": i} for i in range(400)]
        (folder / f"{label}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken json\n")
    held_out = [(_line(rng, SCIENCE), "hq") for _ in range(50)] + [(_line(rng, SPORT), "lq") for _ in range(50)]
    cfg = TrainConfig(
        inputs=(f"hq={folder / 'hq.jsonl'}", f"lq={folder / 'lq.jsonl'}"),
        output=str(folder / "q.bin"),
        bucket=20_000,
        dim=32,
        epoch=5,
    )
    return cfg, train_fasttext(cfg), held_out


def test_training_reports_and_separates_two_classes_on_held_out_lines(quality_model):
    cfg, report, held_out = quality_model
    assert report["labels"] == {"hq": 400, "lq": 400} and report["skipped_rows"] == 2
    assert report["train_rows"] + report["valid_rows"] == 800 and report["valid_rows"] > 40
    assert report["precision_at_1"] > 0.95 and set(report["per_label"]) == {"hq", "lq"}
    labels, _ = predict_batch(load_fasttext(cfg.output), [text for text, _ in held_out])
    accuracy = np.mean([row[0] == truth for row, (_, truth) in zip(labels, held_out)])
    assert accuracy >= 0.95


@pytest.mark.slow
def test_training_is_reproducible_and_quantization_shrinks_the_model(quality_model, tmp_path):
    cfg, report, _ = quality_model
    again = train_fasttext(TrainConfig(**{**cfg.__dict__, "output": str(tmp_path / "again.bin")}))
    assert (tmp_path / "again.bin").read_bytes() == Path(cfg.output).read_bytes()
    small = train_fasttext(TrainConfig(**{**cfg.__dict__, "output": str(tmp_path / "q.ftz"), "quantize": True}))
    assert small["bytes"] < report["bytes"] / 3 and small["precision_at_1"] > 0.9
    assert again["precision_at_1"] == report["precision_at_1"]


def test_the_stage_batch_predicts_the_probability_of_the_named_label(quality_model, make_batch, make_record):
    cfg, _, held_out = quality_model
    rows = [make_record(f"d/{i}", text) for i, (text, _) in enumerate(held_out)]
    rows.append(make_record("d/multi", "quantum experiment data\nwith the laboratory theory"))
    out = FastTextScore(model_path=cfg.output, label="__label__hq", threshold=0.5)(make_batch(rows))
    scores = out.column("text_fasttext_v1__score").to_pylist()
    labels, probs = predict_batch(load_fasttext(cfg.output), [r[S.TEXT] for r in rows], k=-1)
    for score, names, values in zip(scores, labels, probs):
        assert score == pytest.approx(float(values[names.index("hq")]), abs=1e-6)
    reasons = out.column(S.DROP_REASON).to_pylist()
    assert reasons[:50].count(None) >= 48 and reasons[50:100].count("text_fasttext_v1:low_score") >= 48
    assert out.column("text_fasttext_v1__label").to_pylist()[-1] == "hq"  # newlines do not break prediction


def test_bad_settings_fail_before_work(quality_model, tmp_path):
    cfg, _, _ = quality_model
    with pytest.raises(ValueError, match="not one of the model's labels"):
        FastTextScore(model_path=cfg.output, label="nope")
    with pytest.raises(ConfigError, match="does not exist"):
        FastTextScore.check(model_path=str(tmp_path / "missing.bin"))
    with pytest.raises(ValueError, match="not both"):
        FastTextScore.check(model_path=cfg.output, threshold=0.5, top_fraction=0.1)
    with pytest.raises(ConfigError, match="needs every score first"):
        FastTextScore(model_path=cfg.output, top_fraction=0.1).decide({"score": __import__("pyarrow").array([0.5])})
    with pytest.raises(ConfigError, match="labelled input .*missing.jsonl does not exist"):
        TrainConfig(inputs=(f"hq={tmp_path / 'missing.jsonl'}",), output=str(tmp_path / "x.bin"))


def test_inputs_that_cannot_train_a_classifier_fail_the_run_not_the_config(tmp_path):
    (tmp_path / "one.jsonl").write_text(json.dumps({"text": "only one label", "label": "a"}))
    cfg = TrainConfig(inputs=(str(tmp_path / "one.jsonl"),), output=str(tmp_path / "x.bin"))
    with pytest.raises(RunError, match="at least two labels") as caught:
        train_fasttext(cfg)
    assert not isinstance(caught.value, ConfigError)
    rows = [{"text": f"{word} row {i}", "label": word} for i in range(20) for word in ("a", "b")]
    (tmp_path / "two.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    slow = TrainConfig(inputs=(str(tmp_path / "two.jsonl"),), output=str(tmp_path / "x.bin"), timeout_s=0.001)
    with pytest.raises(RunError, match="took longer than"):
        train_fasttext(slow)
    assert not (tmp_path / "x.bin").exists()
