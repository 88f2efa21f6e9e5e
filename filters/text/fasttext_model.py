"""fastText models: loading from a local path and batch prediction.

Prediction always goes through the list-input path (``model.predict(list_of_lines, k)``): it is the
fast path (one C++ call per batch) and it avoids the numpy-2 copy error that single-string
``predict`` raises in some fastText builds. fastText reads one line per text, so newlines become
spaces; very long texts are cut to ``max_chars`` (the classifiers' accuracy saturates far below).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusionforge.pipelines.core.errors import ConfigError, MissingDependency

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


def predict_batch(
    model: Any, texts: Sequence[str], k: int = 1, max_chars: int = 100_000
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
