"""A score head over CLIP image embeddings from a local checkpoint: a chain of linear layers.

LAION's aesthetic predictors are of this form: the first (``sa_0_4_vit_l_14_linear.pth``) one
``Linear(768, 1)``, the improved one (``sac+logos+ava1-l14-linearMSE.pth``) five ``Linear`` layers
with dropout between them and no activation, over L2-normalised CLIP ViT-L/14 embeddings. A
watermark or quality probe trained the same way loads too. Layers are taken in the order of their
names (``layers.0``, ``layers.2``, ... compared by number); a checkpoint holding anything but
weights and biases (a norm, an embedding) is refused, since it is not such a head.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fusionforge.pipelines.core.errors import ConfigError, MissingDependency


class LinearHead:
    """``x @ W1.T + b1`` then the next layer, ...: one score per embedding row."""

    def __init__(self, path: str) -> None:
        self.layers = _layers(_state_dict(path), path)
        self.input_dim = self.layers[0][0].shape[1]

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)
        if x.shape[-1] != self.input_dim:
            raise ConfigError(f"the head takes {self.input_dim}-d embeddings; the CLIP model gives {x.shape[-1]}-d")
        for weight, bias in self.layers:
            x = x @ weight.T + bias
        return x[:, 0]


def _state_dict(path: str) -> dict[str, np.ndarray]:
    if not Path(path).is_file():
        raise ConfigError(f"score head {path} does not exist")
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency("torch", "clip") from exc
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several kinds for a file that is no checkpoint
            raise ConfigError(f"cannot read score head {path}: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a Lightning checkpoint
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise ConfigError(f"score head {path} holds no state dict")
    return {key: value.detach().cpu().double().numpy() for key, value in state.items()}


def _natural(key: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _layers(state: dict[str, np.ndarray], path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    prefixes = sorted({key.rsplit("weight", 1)[0] for key in state if key.endswith("weight")}, key=_natural)
    expected = {p + suffix for p in prefixes for suffix in ("weight", "bias")}
    if set(state) != expected or not prefixes:
        raise ConfigError(f"{path} is not a chain of linear layers (weights and biases only): {sorted(state)[:8]}")
    layers = [(state[p + "weight"], state[p + "bias"]) for p in prefixes]
    width = layers[0][0].shape[-1]
    for weight, bias in layers:
        if weight.ndim != 2 or bias.shape != (weight.shape[0],) or weight.shape[1] != width:
            raise ConfigError(f"{path}: layer shapes do not chain ({weight.shape} after width {width})")
        width = weight.shape[0]
    if width != 1:
        raise ConfigError(f"{path}: the head ends in {width} outputs; a score head ends in 1")
    return layers
