"""A CLIP model from open-clip-torch, loaded once, from local weights only, scoring in batches.

``model`` is an open_clip model name (``ViT-B-32``), the path of a model-config JSON (registered with
``open_clip.add_model_config`` under its file stem, for custom architectures), or ``local-dir:/path``
(a folder with ``open_clip_config.json`` and weights). ``pretrained`` is a local checkpoint
(``.pt``/``.bin``/``.safetensors``) or an open_clip tag whose weights are already in the local cache:
fusionforge never downloads, so the hub is switched to offline mode before loading and a missing
tag fails at once with the fix. Random weights are refused: a score from them means nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusionforge.filters.policy import ScorePolicy, check_policy
from fusionforge.pipelines.core.bounds import Bound
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
DEVICES = ("auto", "cpu", "cuda")  # auto: cuda when torch sees a GPU
COSINE = Bound(integer=False, min=-1, max=1)  # a CLIP score: the cosine of two L2-normalised embeddings


def check_clip_args(model: str, pretrained: str | None) -> None:
    """Cheap checks before any model is built (a config error fails the run before work starts)."""
    if model.startswith("local-dir:"):
        if not Path(model.removeprefix("local-dir:")).is_dir():
            raise ConfigError(f"CLIP model folder {model.removeprefix('local-dir:')} does not exist")
        return
    if model.endswith(".json") and not Path(model).is_file():
        raise ConfigError(f"CLIP model config {model} does not exist")
    if not pretrained:
        raise ConfigError(
            "CLIP needs weights: give --clip-pretrained a local .pt/.safetensors file or a tag whose "
            "weights are in the local open_clip cache (fusionforge downloads nothing)"
        )
    looks_like_path = pretrained.endswith(CHECKPOINT_SUFFIXES) or os.sep in pretrained
    if looks_like_path and not Path(pretrained).is_file():
        raise ConfigError(f"CLIP checkpoint {pretrained} does not exist")


class ClipPolicy(ScorePolicy):
    """The keep policy of a CLIP-scored stage, plus the checks its model arguments get before a run."""

    scores = COSINE

    @classmethod
    def check(
        cls,
        model: str = "ViT-B-32",
        pretrained: str | None = None,
        threshold: float | None = None,
        top_fraction: float | None = None,
        **_: object,
    ) -> None:
        """Cheap checks before a run (building the stage loads the model)."""
        check_policy(cls.name, threshold, top_fraction, cls.scores)
        check_clip_args(model, pretrained)


class ClipScorer:
    """Image and text embeddings (L2-normalised) and their cosine similarity, computed in batches."""

    def __init__(self, model: str, pretrained: str | None, device: str = "auto", precision: str = "fp32") -> None:
        check_clip_args(model, pretrained)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise MissingDependency("open_clip", "clip") from exc
        self.torch = torch
        name = model
        if model.endswith(".json"):
            open_clip.add_model_config(model)
            name = Path(model).stem
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        weights = None if model.startswith("local-dir:") else pretrained
        try:
            self.model, _, self.preprocess = open_clip.create_model_and_transforms(
                name, pretrained=weights, device=self.device, precision=precision
            )
        except RuntimeError as exc:
            raise ConfigError(
                f"cannot load CLIP {model!r} with weights {pretrained!r}: {exc}. Tags load only from "
                "the local cache; give a local checkpoint path instead"
            ) from exc
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(name)

    def image_features(self, images: Sequence[Any]) -> np.ndarray:
        """Normalised embeddings of PIL images, one row per image."""
        torch = self.torch
        pixels = torch.stack([self.preprocess(image.convert("RGB")) for image in images]).to(self.device)
        with torch.no_grad():
            features = self.model.encode_image(pixels).float()
        return torch.nn.functional.normalize(features, dim=-1).cpu().numpy()

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised embeddings of texts (cut to the model's context length by its tokenizer)."""
        torch = self.torch
        tokens = self.tokenizer(list(texts)).to(self.device)
        with torch.no_grad():
            features = self.model.encode_text(tokens).float()
        return torch.nn.functional.normalize(features, dim=-1).cpu().numpy()

    def similarity(self, images: Sequence[Any], texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each image with its text (the DataComp CLIP score)."""
        if not images:
            return np.zeros(0)
        return np.sum(self.image_features(images) * self.text_features(texts), axis=1)
