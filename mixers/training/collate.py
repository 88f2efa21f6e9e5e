"""Batches of ``PackedDataset`` samples: one flat row (flash-attention style) or a padded matrix.

Both keep documents apart the way transformers' packed-sequence support expects: ``position_ids``
restart at every document and no ``attention_mask`` is returned, so the model builds a
block-diagonal causal mask from the positions (sdpa and eager too). ``cu_seqlens`` carries the same
boundaries for kernels that take them (``flash_attn_varlen_func``).
"""

from __future__ import annotations

from typing import Any

import torch

IGNORE = -100  # the label transformers leaves out of the loss
MEDIA_KEYS = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw")
MODEL_INPUTS = ("input_ids", "labels", "position_ids", *MEDIA_KEYS)  # what a transformers VLM's forward takes


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """A batch's arguments for a transformers VLM's forward: its inputs (None ones left out), ``use_cache=False``.

    No cache, and no ``attention_mask``: only then does transformers find the documents from the
    restarting ``position_ids`` and keep them apart.
    """
    return {"use_cache": False, **{k: batch[k] for k in MODEL_INPUTS if batch.get(k) is not None}}


def collate_varlen(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """All sequences end to end in one row: ``input_ids`` (1, N), ``cu_seqlens`` over every document."""
    lengths = [len(s["input_ids"]) for s in samples]
    starts = torch.tensor([0, *lengths[:-1]]).cumsum(0)
    bounds = [s["cu_seqlens"][:-1] + int(at) for s, at in zip(samples, starts)]
    cu_seqlens = torch.cat([*bounds, torch.tensor([sum(lengths)], dtype=torch.int32)]).to(torch.int32)
    return {
        "input_ids": torch.cat([s["input_ids"] for s in samples])[None],
        "labels": torch.cat([s["labels"] for s in samples])[None],
        "position_ids": torch.cat([s["position_ids"] for s in samples], dim=-1).unsqueeze(-2),
        "cu_seqlens": cu_seqlens,
        "max_seqlen": int((cu_seqlens[1:] - cu_seqlens[:-1]).max()),
        **_media(samples),
        "sequence_ids": [s["sequence_id"] for s in samples],
    }


def collate_padded(samples: list[dict[str, Any]], length: int | None = None, pad_id: int = 0) -> dict[str, Any]:
    """One row per sequence, padded to ``length`` (default: the longest); padding is its own run of positions."""
    length = length or max(len(s["input_ids"]) for s in samples)
    rows = len(samples)
    ids = torch.full((rows, length), pad_id, dtype=torch.long)
    labels = torch.full((rows, length), IGNORE, dtype=torch.long)
    axes = samples[0]["position_ids"].shape[:-1]
    positions = torch.zeros((*axes, rows, length), dtype=torch.long)
    for row, sample in enumerate(samples):
        n = len(sample["input_ids"])
        if n > length:
            raise ValueError(f"sequence {sample['sequence_id']} holds {n} tokens, more than length={length}")
        ids[row, :n], labels[row, :n] = sample["input_ids"], sample["labels"]
        positions[..., row, :n] = sample["position_ids"]
        positions[..., row, n:] = torch.arange(length - n)
    return {
        "input_ids": ids,
        "labels": labels,
        "position_ids": positions,
        "cu_seqlens": [s["cu_seqlens"] for s in samples],
        **_media(samples),
        "sequence_ids": [s["sequence_id"] for s in samples],
    }


def _media(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: joined([s[key] for s in samples if s[key] is not None]) for key in MEDIA_KEYS}


def joined(tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """The tensors end to end along the first axis (one alone is not copied: pixels are large); None for none."""
    if len(tensors) > 1:
        return torch.cat(tensors)
    return tensors[0] if tensors else None
