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
from fusionforge.mixers.training.collate import IGNORE
from fusionforge.mixers.training.media import QWEN_FAMILIES, MediaInput, MediaMismatch, MediaProcessors
from fusionforge.mixers.training.positions import mrope_positions, text_positions


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
        labels = np.full(len(ids), IGNORE, np.int64)
        images, videos, positions = [], [], []
        for segment, media in zip(parts.segments, parts.media):
            named = where(parts.sequence_id, segment)
            at, length = segment["offset"], segment["length"]
            seg_ids, seg_roles = ids[at : at + length], roles[at : at + length]
            placeholders = int((seg_roles >= Role.IMAGE).sum())
            if len(seg_ids) != length or placeholders != segment["vision_tokens"]:
                raise MediaMismatch(
                    f"{named}: rebuilt as {len(seg_ids)} tokens ({placeholders} vision), the plan holds {length} "
                    f"({segment['vision_tokens']} vision)"
                )
            if segment["source"] not in self.masked_sources:
                labels[at : at + length] = np.where(seg_roles >= Role.WRAPPER, IGNORE, seg_ids)
                labels[at] = IGNORE
            processed = [self.processors.process(item, named) for item in media]
            for item in processed:
                (images if item.kind == "image" else videos).append(item)
            if self.mrope:
                grids = iter(tuple(g) for item in processed for g in item.grid_thw.tolist())
                positions.append(mrope_positions(seg_roles, grids, self.preset.merge_size))
        ids[roles == Role.IMAGE], ids[roles == Role.VIDEO] = self.image_id, self.video_id
        text = text_positions([s["length"] for s in parts.segments])
        position_ids = np.concatenate([text[None], np.concatenate(positions, axis=1)]) if self.mrope else text
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
            sample[name] = torch.cat([i.pixel_values for i in items]) if items else None
            sample[grid] = torch.cat([i.grid_thw for i in items]) if items else None
        return sample
