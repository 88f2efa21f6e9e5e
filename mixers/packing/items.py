"""Packer items as columns: a batch of pieces (numpy for the numbers, Arrow for what the plan copies), and streams.

The packer never touches one item at a time in Python: drawing a window is a few cumulative sums
over a stream's front, packing is whole-array work, and a plan's segment rows are gathered from the
batch's Arrow columns with ``take``. An :class:`ItemBatch` is that unit of work; a :class:`Stream`
serves batches from a source iterator with a push-back front (leftovers and unused long text come
back first).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from fusionforge.mixers.packing.counting import MEDIA_SPAN

# Per item, what the packer works on and what a plan segment copies: numbers in one int64 matrix (one numpy
# operation moves them all), strings and media in Arrow. partition and row are -1 where unknown.
NUMBERS = ("kind", "size", "vision", "offset", "epoch", "piece", "n_pieces", "start", "partition", "row")
META_SCHEMA = pa.schema(
    [("sample_id", pa.string()), ("source", pa.string()), ("modality", pa.string()), ("media", pa.list_(MEDIA_SPAN))]
)
_COLUMN = {name: i for i, name in enumerate(NUMBERS)}


@dataclass(frozen=True)
class ItemBatch:
    """Items in columns: ``size`` tokens still to place, ``offset`` tokens of the piece already placed (long text)."""

    numbers: np.ndarray  # (n, len(NUMBERS)) int64
    meta: pa.Table  # META_SCHEMA, one row per item

    def __len__(self) -> int:
        return len(self.numbers)

    def column(self, name: str) -> np.ndarray:
        return self.numbers[:, _COLUMN[name]]

    kind = property(lambda self: self.numbers[:, 0])
    size = property(lambda self: self.numbers[:, 1])
    vision = property(lambda self: self.numbers[:, 2])
    offset = property(lambda self: self.numbers[:, 3])

    @classmethod
    def build(cls, meta: pa.Table, **numbers: Any) -> ItemBatch:
        """A batch from plain columns: every name of NUMBERS (offset: 0, partition and row: -1 if not given)."""
        n = meta.num_rows
        matrix = np.zeros((n, len(NUMBERS)), np.int64)
        matrix[:, _COLUMN["partition"]] = matrix[:, _COLUMN["row"]] = -1
        for name, values in numbers.items():
            matrix[:, _COLUMN[name]] = values
        return cls(matrix, meta.select(META_SCHEMA.names).cast(META_SCHEMA))

    @classmethod
    def empty(cls) -> ItemBatch:
        return _EMPTY

    @classmethod
    def concat(cls, batches: list[ItemBatch]) -> ItemBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        return cls(np.concatenate([b.numbers for b in batches]), pa.concat_tables([b.meta for b in batches]))

    def slice(self, start: int, stop: int) -> ItemBatch:
        return ItemBatch(self.numbers[start:stop], self.meta.slice(start, stop - start))

    def take(self, indices: np.ndarray) -> ItemBatch:
        indices = np.asarray(indices, np.int64)
        if not len(indices):
            return _EMPTY
        if indices[-1] - indices[0] == len(indices) - 1 and (len(indices) < 3 or (np.diff(indices) == 1).all()):
            return self.slice(int(indices[0]), int(indices[-1]) + 1)  # a run: zero-copy
        return ItemBatch(self.numbers[indices], self.meta.take(pa.array(indices)))

    def with_rest(self, size: np.ndarray, offset: np.ndarray) -> ItemBatch:
        """The same items with new sizes and offsets (the unused part of long text)."""
        numbers = self.numbers.copy()
        numbers[:, 1], numbers[:, 3] = size, offset
        return ItemBatch(numbers, self.meta)


_EMPTY = ItemBatch(np.zeros((0, len(NUMBERS)), np.int64), META_SCHEMA.empty_table())
_EMPTY.numbers.flags.writeable = False


class Stream:
    """Batches from an iterator, read as one sequence of items, with a push-back front."""

    def __init__(self, batches: Iterator[ItemBatch]) -> None:
        self._batches = batches
        self._chunks: deque[ItemBatch] = deque()
        self._buffered = 0
        self._ended = False

    def _fill(self, n: int) -> None:
        while self._buffered < n and not self._ended:
            batch = next(self._batches, None)
            if batch is None:
                self._ended = True
            elif len(batch):
                self._chunks.append(batch)
                self._buffered += len(batch)

    def front(self, n: int) -> ItemBatch:
        """The first ``n`` items, left in place (fewer only where the stream ends)."""
        self._fill(n)
        parts, need = [], n
        for chunk in self._chunks:
            if need <= 0:
                break
            parts.append(chunk if len(chunk) <= need else chunk.slice(0, need))
            need -= len(parts[-1])
        return ItemBatch.concat(parts)

    def drop(self, n: int) -> None:
        """Remove the first ``n`` items, which must be buffered (``front`` has read them)."""
        self._buffered -= n
        while n > 0:
            chunk = self._chunks.popleft()
            if len(chunk) > n:
                self._chunks.appendleft(chunk.slice(n, len(chunk)))
            n -= len(chunk)

    def push_front(self, batch: ItemBatch) -> None:
        if len(batch):
            self._chunks.appendleft(batch)
            self._buffered += len(batch)

    @property
    def exhausted(self) -> bool:
        self._fill(1)
        return self._buffered == 0

    def rest(self) -> Iterator[ItemBatch]:
        """Everything left, batch by batch (one input shard's pieces at a time): a pack's surplus can be most of
        the corpus, and as one batch it held every left-over item's id and media at once."""
        while self._chunks:
            chunk = self._chunks.popleft()
            self._buffered -= len(chunk)
            yield chunk
        yield from self._batches
        self._ended = True
