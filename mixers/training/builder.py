"""One planned sequence's parts as the tensors a model trains on, whichever copy of the data they came from.

The input shards (records re-tokenized) and the materialized shards (ids and roles as ``pack``
wrote them) both give a ``SequenceParts``; ``SampleBuilder`` turns it into the sample the module
docstring of ``dataset`` describes, so both sources give identical tensors by construction. Every
segment's vision tokens are checked against the plan, and every media item's placeholder count
against its processor's, before a sample is returned.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fusionforge.mixers.packing.materialize import Role
from fusionforge.mixers.tokens.vision import Preset
from fusionforge.mixers.training.collate import IGNORE, joined
from fusionforge.mixers.training.media import QWEN_FAMILIES, MediaInput, MediaMismatch, MediaProcessors
from fusionforge.mixers.training.positions import IMAGE, VIDEO, mrope_positions, text_positions

WRAPPER = int(Role.WRAPPER)


@dataclass
class SequenceParts:
    """A sequence's token ids and roles (``tokens`` long), its plan segments and, per segment, its media."""

    sequence_id: int
    window: int
    ids: np.ndarray  # int64
    roles: np.ndarray  # int64 ``Role`` values
    cu_seqlens: list[int]
    segments: list[dict[str, Any]]  # plan segments in order (offset, length, vision_tokens, source, record)
    media: list[list[MediaInput]]  # per segment, one input per media span, in order


def where(sequence_id: int, segment: dict[str, Any]) -> str:
    """How errors name a segment: its sequence and its record's place in the pack's input."""
    return (
        f"sequence {sequence_id}, record {segment['sample_id']} "
        f"(input shard {segment['partition']}, row {segment['row']})"
    )


class SampleBuilder:
    """Labels, positions and processed media for ``SequenceParts`` (the family's placeholders and processors)."""

    def __init__(self, preset: Preset, placeholder_ids: tuple[int, int], masked_sources: Collection[str] = ()) -> None:
        self.preset = preset
        self.image_id, self.video_id = placeholder_ids
        self.masked_sources = frozenset(masked_sources)
        self.processors = MediaProcessors(preset)
        self.mrope = preset.family in QWEN_FAMILIES

    def build(self, parts: SequenceParts) -> dict[str, Any]:
        """The sample's tensors (see ``dataset``); a ``MediaMismatch`` when anything differs from the plan."""
        ids, roles = parts.ids.astype(np.int64), parts.roles.astype(np.int64)
        offsets = np.array([s["offset"] for s in parts.segments], np.int64)
        vision = self._checked_vision_tokens(parts, roles, offsets)
        labels = self._labels(parts, ids, roles, offsets)
        text = text_positions([s["length"] for s in parts.segments])
        position_ids = np.repeat(text[None], 4, axis=0) if self.mrope else text  # a text document: 3 equal axes
        images, videos = [], []
        for segment, media, count in zip(parts.segments, parts.media, vision):
            processed = [self.processors.process(item, where(parts.sequence_id, segment)) for item in media]
            for item in processed:
                (images if item.kind == "image" else videos).append(item)
            if self.mrope and count:
                at, stop = segment["offset"], segment["offset"] + segment["length"]
                grids = iter(tuple(g) for item in processed for g in item.grid_thw.tolist())
                position_ids[1:, at:stop] = mrope_positions(roles[at:stop], grids, self.preset.merge_size)
        ids[roles == IMAGE], ids[roles == VIDEO] = self.image_id, self.video_id
        sample = {
            "sequence_id": parts.sequence_id,
            "window": parts.window,
            "input_ids": torch.from_numpy(ids),
            "labels": torch.from_numpy(labels),
            "position_ids": torch.from_numpy(position_ids),
            "cu_seqlens": torch.tensor(parts.cu_seqlens, dtype=torch.int32),
        }
        for name, grid, items in (
            ("pixel_values", "image_grid_thw", images),
            ("pixel_values_videos", "video_grid_thw", videos),
        ):
            sample[name] = joined([i.pixel_values for i in items])
            sample[grid] = joined([i.grid_thw for i in items])
        return sample

    def _checked_vision_tokens(self, parts: SequenceParts, roles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Each segment's vision tokens, refused unless every segment has the plan's length and vision tokens."""
        lengths = np.array([s["length"] for s in parts.segments], np.int64)
        stops = np.minimum(offsets + lengths, len(roles))
        seen = np.r_[0, np.cumsum(roles >= IMAGE)]
        vision = seen[stops] - seen[np.minimum(offsets, len(roles))]
        planned = np.array([s["vision_tokens"] for s in parts.segments], np.int64)
        for i in np.flatnonzero((stops - offsets != lengths) | (vision != planned)):
            segment = parts.segments[i]
            raise MediaMismatch(
                f"{where(parts.sequence_id, segment)}: rebuilt as {max(0, stops[i] - offsets[i])} tokens "
                f"({vision[i]} vision), the plan holds {segment['length']} ({segment['vision_tokens']} vision)"
            )
        return vision

    def _labels(self, parts: SequenceParts, ids: np.ndarray, roles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The ids on text and EOS tokens of learned segments, ``IGNORE`` elsewhere and on each document's first."""
        learned = np.zeros(len(ids), bool)
        for segment in parts.segments:
            if segment["source"] not in self.masked_sources:
                learned[segment["offset"] : segment["offset"] + segment["length"]] = True
        learned[offsets] = False
        return np.where(learned & (roles < WRAPPER), ids, IGNORE)
