"""The embedding models of semantic dedup, loaded from local files only; every output row is unit-norm.

Text: a model2vec static model (a folder written by ``StaticModel.save_pretrained``: a tokenizer and
one vector per token; a text's embedding is the mean of its tokens' vectors) or CLIP's text tower.
Images and video keyframes: CLIP's image tower (``filters/image/clip_model.py``).

CLIP runs in micro-batches of one fixed shape (the last one padded with blank inputs): on CPU and
GPU a batch's floats depend on its shape, and Ray and the in-process executor cut batches
differently, so without the padding the same image could get different last bits on the two
executors. A static model's mean is per row already.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusionforge.filters.image.clip_model import ClipScorer
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency

CLIP_TEXT = "clip"  # --text-model clip: CLIP's text tower instead of a static model


def check_static_model(path: str) -> None:
    """A model2vec folder must exist locally (fusionforge downloads nothing)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"text model folder {path} does not exist (give a local model2vec folder)")
    if not (folder / "tokenizer.json").is_file():
        raise ConfigError(f"{path} is not a model2vec folder: it has no tokenizer.json")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32); an all-zero row stays zero (nothing to compare)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def padded_batches(encode: Callable[[list], np.ndarray], inputs: Sequence, blank: Any, size: int) -> np.ndarray:
    """``encode`` over ``inputs`` in batches of exactly ``size`` (the last filled with ``blank``)."""
    parts = []
    for start in range(0, len(inputs), size):
        chunk = list(inputs[start : start + size])
        parts.append(encode(chunk + [blank] * (size - len(chunk)))[: len(chunk)])
    return np.concatenate(parts) if parts else np.empty((0, 0), np.float32)


class StaticTextEmbedder:
    """model2vec ``StaticModel.from_pretrained(local folder)``."""

    def __init__(self, path: str) -> None:
        check_static_model(path)
        try:
            from model2vec import StaticModel
        except ImportError as exc:
            raise MissingDependency("model2vec", "semantic") from exc
        self.model = StaticModel.from_pretrained(path, force_download=False)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), normalize=False, use_multiprocessing=False)
        return unit_rows(vectors.reshape(len(texts), -1))


class ClipEmbedder:
    """CLIP's image tower (PIL images) and text tower, in padded micro-batches of ``batch`` rows."""

    def __init__(self, model: str, pretrained: str | None, device: str, batch: int) -> None:
        self.scorer = ClipScorer(model, pretrained, device)
        self.batch = batch

    def images(self, images: Sequence[Any]) -> np.ndarray:
        if not images:
            return np.empty((0, 0), np.float32)
        from PIL import Image

        blank = Image.new("RGB", (8, 8))
        return unit_rows(padded_batches(self.scorer.image_features, images, blank, self.batch))

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        return unit_rows(padded_batches(self.scorer.text_features, texts, "", self.batch))
