"""``PackedDataset``: the sequences of a ``pack`` plan as model-ready tensors, in plan order.

Per sequence (``tokens`` long; ``collate_padded`` pads to L):

- ``input_ids``: the records' ids exactly as ``pack`` counted them (read from the materialized
  shards when present, else rebuilt from the input shards; checked segment by segment), vision
  placeholders set to the model's image / video token;
- ``labels``: the ids, ``-100`` on placeholders, media wrappers (timestamps included), the first
  token of every document (so no document learns to predict the next one) and every token of the
  ``masked_sources``;
- ``cu_seqlens`` (int32: 0, the end of each document) and ``position_ids`` restarting per document:
  ``(length,)``, or ``(4, length)`` for the Qwen2-VL family (text positions, then the M-RoPE axes);
- ``pixel_values`` / ``image_grid_thw`` and ``pixel_values_videos`` / ``video_grid_thw`` from the
  family's processors (None when the sequence has none), each item checked against the plan.

Ranks, DataLoader workers, micro-batches and resuming: ``schedule``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from torch.utils.data import IterableDataset, get_worker_info

from fusionforge.mixers.training.builder import SampleBuilder, SequenceParts
from fusionforge.mixers.training.collate import collate_varlen
from fusionforge.mixers.training.materialized import MaterializedShards
from fusionforge.mixers.training.packed import InputParts, PlanRows
from fusionforge.mixers.training.schedule import Position, check_state, rank_sequences
from fusionforge.mixers.training.setup import LoaderSetup
from fusionforge.pipelines.core.errors import ConfigError

SOURCES = ("auto", "materialized", "input")


class PackedDataset(IterableDataset):
    """An ``IterableDataset`` over a pack output.

    Args:
        packed: the ``pack`` output folder.
        tokenizer: the tokenizer to encode text with; None uses the path ``pack`` recorded. Either way it
            must be the one ``pack --tokenizer`` counted with (a ``ConfigError`` otherwise).
        masked_sources: sources whose tokens are context only (labels ``-100``).
        image_token, video_token: override the placeholder tokens (defaults: the family's, see above).
        rank, world_size: this process's share of every planned window (``schedule``).
        batch_size: yield micro-batches of this many sequences made by ``collate_fn`` (use
            ``DataLoader(batch_size=None)``): the batches are then the same with any number of workers and
            a run resumes exactly (``state_dict``); None yields single samples.
        source: where ids and media come from: ``"materialized"`` (the ``pack --materialize`` shards: ids and
            roles as pack wrote them, media bytes beside them), ``"input"`` (the pack's input shards, records
            re-tokenized) or ``"auto"`` (materialized when present). Both give identical tensors.
    """

    def __init__(
        self,
        packed: str | Path,
        tokenizer: str | Path | None = None,
        masked_sources: Collection[str] = (),
        image_token: str | None = None,
        video_token: str | None = None,
        rank: int = 0,
        world_size: int = 1,
        batch_size: int | None = None,
        collate_fn: Callable[[list[dict[str, Any]]], Any] = collate_varlen,
        source: str = "auto",
    ) -> None:
        self.setup = LoaderSetup.open(packed, tokenizer, masked_sources, image_token, video_token)
        self.run = self.setup.run
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be within [0, world_size), got rank={rank}, world_size={world_size}")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.rank, self.world_size, self.batch_size, self.collate_fn = rank, world_size, batch_size, collate_fn
        self._settings = {"plan_rows": self.run.report.get("sequences"), "rank": rank, "world_size": world_size}
        self._settings["batch_size"] = batch_size
        self._position = Position()
        self.seq_len = self.run.config.seq_len
        if source not in SOURCES:
            raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        self.materialized = MaterializedShards.find(self.run) if source != "input" else None
        if source == "materialized" and self.materialized is None:
            raise ConfigError(
                f"{self.run.folder} has no materialized shards with token roles; run pack with --materialize "
                "(shards from before roles were stored need a new run), or read the input with source='input'"
            )
        self.source = "materialized" if self.materialized is not None else "input"
        self._parts: tuple[Callable[[dict[str, Any]], SequenceParts], SampleBuilder] | None = None

    def _ready(self) -> tuple[Callable[[dict[str, Any]], SequenceParts], SampleBuilder]:
        """The parts reader (materialized shards or input) and the builder, made once in the process that iterates."""
        if self._parts is None:
            encoder = self.setup.encoder()
            builder = self.setup.builder(encoder)
            if self.materialized is not None:
                self._parts = (self._materialized_parts, builder)
            else:
                self._parts = (InputParts(self.run.config.input, encoder).parts, builder)
        return self._parts

    def _materialized_parts(self, row: dict[str, Any]) -> SequenceParts:
        return self.materialized.parts(row["sequence_id"])

    def __iter__(self) -> Iterator[Any]:
        """This reader's micro-batches from its position (a plain method: the position is set before the first)."""
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        sequences = rank_sequences(str(self.run.plan_path), self.rank, self.world_size)
        size = self.batch_size or 1
        total = -(-len(sequences) // size)
        if self._position.workers == 1 and self._position.next >= total:
            self._position = Position()  # a pass ended: the next iteration is a new pass
        first = self._position.first_for(worker, workers)
        self._position = Position(first, workers)
        return self._batches(sequences, range(first, total, workers))

    def _batches(self, sequences: np.ndarray, numbers: range) -> Iterator[Any]:
        plan = PlanRows(self.run.plan_path)
        size = self.batch_size or 1
        for number in numbers:
            rows = [plan.row(int(i)) for i in sequences[number * size : (number + 1) * size]]
            samples = [self.build(row) for row in rows]
            self._position = Position(number + numbers.step, numbers.step)
            yield self.collate_fn(samples) if self.batch_size else samples[0]

    def state_dict(self) -> dict[str, Any]:
        """The position of the next micro-batch (inside a DataLoader worker: that worker's own next one)."""
        return {**self._settings, "next": self._position.next, "workers": self._position.workers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Start the next iteration where ``state`` left off (``{"next": N}`` alone: at micro-batch N)."""
        self._position = check_state({**self._settings, **state}, self._settings)

    def sequence(self, sequence_id: int) -> dict[str, Any]:
        """One sequence by its ``sequence_id`` (for inspection and tests)."""
        table = pq.read_table(self.run.plan_path, filters=[("sequence_id", "=", sequence_id)])
        if table.num_rows != 1:
            raise ConfigError(f"{self.run.folder} has no sequence {sequence_id}")
        return self.build(table.to_pylist()[0])

    def build(self, row: dict[str, Any]) -> dict[str, Any]:
        """The tensors of one plan row (see the module docstring)."""
        parts, builder = self._ready()
        return builder.build(parts(row))
