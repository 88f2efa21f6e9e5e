"""Megatron-Energon over a pack output: the sample type of ``pack --materialize --energon`` and a task encoder.

``get_train_dataset("PACKED/packed", ...)`` yields ``PackedSequenceSample``s (the materialized
sample, media as encoded bytes); ``PackedTaskEncoder`` turns each into exactly the sample
``PackedDataset`` builds for that sequence (the same ``SampleBuilder``) and batches them with
``collate_varlen`` (or another collate). Energon then does its own sharding across ranks and
workers, shuffling and checkpointing; see docs/training.md for what that means for the planned
per-window vision share.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
from megatron.energon import DefaultTaskEncoder, Sample, edataclass, stateless

from fusionforge.mixers.training.builder import SampleBuilder
from fusionforge.mixers.training.collate import collate_varlen
from fusionforge.mixers.training.materialized import HEADER, IDS, ROLES, parts_from_members
from fusionforge.mixers.training.setup import LoaderSetup

MEDIA_PART = re.compile(r"\d{3}\.\w+")  # 000.jpg, 001.mp4: a sample's media members


@edataclass
class PackedSequenceSample(Sample):
    """One packed sequence as ``pack --materialize`` wrote it (docs/formats.md).

    ``input_ids`` (int32) and ``roles`` (uint8) are L long, zero after ``header["tokens"]``;
    ``header`` is the sample's ``.json`` (sequence_id, window, cu_seqlens, segments, media spans);
    ``media`` maps each media member's part name (``000.jpg``) to its encoded bytes.
    """

    input_ids: np.ndarray
    roles: np.ndarray
    header: dict[str, Any]
    media: dict[str, bytes]


def sample_loader(raw: dict[str, Any]) -> dict[str, Any]:
    """Energon's raw sample (part name -> bytes) as ``PackedSequenceSample`` fields."""
    return {
        "input_ids": np.load(io.BytesIO(raw[IDS])),
        "roles": np.load(io.BytesIO(raw[ROLES])),
        "header": json.loads(raw[HEADER]),
        "media": {part: data for part, data in raw.items() if MEDIA_PART.fullmatch(part)},
    }


def part_filter(part: str) -> bool:
    """Every member of a sample is needed."""
    return True


class PackedTaskEncoder(DefaultTaskEncoder):
    """Energon task encoder: ``PackedSequenceSample`` -> ``PackedDataset``'s sample -> ``collate_fn`` batches.

    Args: as ``PackedDataset`` (``packed`` is the pack output folder, the parent of the energon dataset).
    """

    decoder = None  # the media stay encoded bytes (dataset.yaml says so too)

    def __init__(
        self,
        packed: str | Path,
        tokenizer: str | Path | None = None,
        masked_sources: Collection[str] = (),
        image_token: str | None = None,
        video_token: str | None = None,
        collate_fn: Callable[[list[dict[str, Any]]], Any] = collate_varlen,
    ) -> None:
        super().__init__()
        self.setup = LoaderSetup.open(packed, tokenizer, masked_sources, image_token, video_token)
        self.collate_fn = collate_fn
        self._builder: SampleBuilder | None = None

    @stateless
    def encode_sample(self, sample: PackedSequenceSample) -> dict[str, Any]:
        if self._builder is None:  # built in the worker that encodes (the tokenizer and processors)
            self._builder = self.setup.builder(self.setup.encoder())
        members = {IDS: sample.input_ids, ROLES: sample.roles, HEADER: sample.header, **sample.media}
        return self._builder.build(parts_from_members(members))

    @stateless
    def batch(self, samples: list[dict[str, Any]]) -> Any:
        return self.collate_fn(samples)
