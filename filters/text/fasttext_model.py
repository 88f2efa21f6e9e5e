"""fastText models: loading from a local path, batch prediction, and training a supervised classifier.

Prediction always goes through the list-input path (``model.predict(list_of_lines, k)``): it is the
fast path (one C++ call per batch) and it avoids the numpy-2 copy error that single-string
``predict`` raises in some fastText builds. fastText reads one line per text, so newlines become
spaces; very long texts are cut to ``max_chars`` (the classifiers' accuracy saturates far below).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency
from fusionforge.pipelines.core.io import atomic_path, open_text

LABEL_PREFIX = "__label__"


def load_fasttext(path: str | os.PathLike) -> Any:
    """A fastText model from a local ``.bin``/``.ftz`` file (nothing is downloaded)."""
    try:
        import fasttext
    except ImportError as exc:
        raise MissingDependency("fasttext", "dev") from exc
    model_path = Path(path)
    if not model_path.is_file():
        raise ConfigError(f"fastText model {path} does not exist; give the path of a .bin or .ftz file")
    try:
        return fasttext.load_model(str(model_path))
    except ValueError as exc:
        raise ConfigError(f"{path} is not a fastText model: {exc}") from exc


def one_line(text: str, max_chars: int) -> str:
    """fastText's input form: one line, at most ``max_chars`` characters."""
    return text[:max_chars].replace("\n", " ").replace("\r", " ")


def predict_batch(model: Any, texts: Sequence[str], k: int = 1, max_chars: int = 100_000
                  ) -> tuple[list[list[str]], list[np.ndarray]]:
    """Labels (without ``__label__``) and probabilities, best first, for every text in one call."""
    if not texts:
        return [], []
    labels, probs = model.predict([one_line(t, max_chars) for t in texts], k=k)
    return [[label.removeprefix(LABEL_PREFIX) for label in row] for row in labels], [np.asarray(p) for p in probs]


def label_probability(labels: list[list[str]], probs: list[np.ndarray], wanted: str) -> np.ndarray:
    """P(``wanted``) per text from ``predict_batch(..., k=-1)`` output (0 where it was not returned)."""
    out = np.zeros(len(labels))
    for row, (names, values) in enumerate(zip(labels, probs)):
        if wanted in names:
            out[row] = float(values[names.index(wanted)])
    return out


@dataclass(frozen=True)
class TrainConfig:
    """``fusionforge filters train-fasttext``: labelled JSONL in, a supervised fastText model out.

    Each input is ``PATH`` (every row has ``label_field``: a label or a list of labels) or
    ``LABEL=PATH`` (every row of PATH gets LABEL, e.g. ``hq=wiki.jsonl lq=crawl.jsonl`` for a DCLM-style
    quality classifier). The defaults make a small model: ``bucket`` 200k (fastText's 2M default gives
    a 256 MB file), 64 dimensions, word bigrams; ``quantize`` shrinks it further (a .ftz-style model).
    """

    inputs: tuple[str, ...]
    output: str
    text_field: str = "text"
    label_field: str = "label"
    dim: int = 64
    epoch: int = 10
    lr: float = 0.5
    word_ngrams: int = 2
    min_count: int = 1
    bucket: int = 200_000
    loss: str = "softmax"
    threads: int = 1
    valid_fraction: float = 0.1
    seed: int = 0
    quantize: bool = False
    max_chars: int = 100_000

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("give at least one labelled JSONL file")
        if not 0 <= self.valid_fraction < 1:
            raise ConfigError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.quantize and self.dim % 2:
            raise ConfigError("quantize needs an even dim (fastText's product quantiser splits vectors in pairs)")
        if self.loss not in ("softmax", "ova", "hs", "ns"):
            raise ConfigError(f"loss must be softmax, ova, hs or ns, got {self.loss!r}")


def labelled_rows(cfg: TrainConfig) -> Iterator[tuple[list[str], str] | None]:
    """(labels, text) per usable input row; None for a row without text or label (counted, skipped)."""
    for spec in cfg.inputs:
        fixed, sep, path = spec.partition("=")
        if not sep or Path(spec).exists():
            fixed, path = "", spec
        if not Path(path).is_file():
            raise ConfigError(f"labelled input {path} does not exist")
        with open_text(path) as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    yield None
                    continue
                labels = [fixed] if fixed else row.get(cfg.label_field) if isinstance(row, dict) else None
                labels = [labels] if isinstance(labels, (str, int)) else labels
                text = row.get(cfg.text_field) if isinstance(row, dict) else None
                if not labels or not isinstance(text, str) or not text.strip():
                    yield None
                    continue
                yield [str(label).strip().replace(" ", "_") for label in labels], text


def train_fasttext(cfg: TrainConfig) -> dict[str, Any]:
    """Train, evaluate on a held-out split, save atomically; return what was done and how well."""
    try:
        import fasttext
    except ImportError as exc:
        raise MissingDependency("fasttext", "dev") from exc
    started = time.monotonic()
    rng = np.random.default_rng(cfg.seed)
    counts: dict[str, int] = {}
    skipped = n_train = n_valid = 0
    with tempfile.TemporaryDirectory(prefix="ff-fasttext-") as work:
        train_path, valid_path = Path(work) / "train.txt", Path(work) / "valid.txt"
        with open(train_path, "w", encoding="utf-8") as train, open(valid_path, "w", encoding="utf-8") as valid:
            for item in labelled_rows(cfg):
                if item is None:
                    skipped += 1
                    continue
                labels, text = item
                for label in labels:
                    counts[label] = counts.get(label, 0) + 1
                line = " ".join(LABEL_PREFIX + label for label in labels) + " " + one_line(text, cfg.max_chars) + "\n"
                held_out = rng.random() < cfg.valid_fraction
                (valid if held_out else train).write(line)
                n_valid += held_out
                n_train += not held_out
        if len(counts) < 2 or n_train == 0:
            raise ConfigError(f"need rows of at least two labels to train a classifier; found {counts or 'none'}")
        model = fasttext.train_supervised(
            input=str(train_path), dim=cfg.dim, epoch=cfg.epoch, lr=cfg.lr, wordNgrams=cfg.word_ngrams,
            minCount=cfg.min_count, bucket=cfg.bucket, loss=cfg.loss, thread=cfg.threads, seed=cfg.seed, verbose=0)
        if cfg.quantize:
            model.quantize(input=str(train_path), qnorm=True, retrain=True, thread=cfg.threads)
        report: dict[str, Any] = {"valid_rows": n_valid}
        if n_valid:
            _, precision, recall = model.test(str(valid_path))
            per_label = model.test_label(str(valid_path))
            report.update(precision_at_1=_finite(precision), recall_at_1=_finite(recall),
                          per_label={k.removeprefix(LABEL_PREFIX): {m: _finite(v) for m, v in scores.items()}
                                     for k, scores in sorted(per_label.items())})
        with atomic_path(cfg.output) as tmp:
            model.save_model(str(tmp))
    return {"output": cfg.output, "bytes": Path(cfg.output).stat().st_size, "train_rows": n_train,
            "skipped_rows": skipped, "labels": dict(sorted(counts.items())), "quantized": cfg.quantize,
            "seconds": round(time.monotonic() - started, 3), **report}


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)
