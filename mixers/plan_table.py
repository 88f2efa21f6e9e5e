"""One packed window as plan rows: sequence order, segment positions, ``cu_seqlens``, all built in bulk with Arrow.

Sequence order inside a window: the sequences are interleaved so that every run of consecutive
sequences carries the window's vision share, not only the whole window. Each sequence's excess
``vision - share * tokens`` is positive (vision-rich) or not; both groups are shuffled with the seed
and merged by their cumulative excess (a sequence is placed where its group's running total
reaches its midpoint, as a share of the group's total), so the running excess never strays further
than about one sequence's worth from zero. A run of B sequences that straddles two windows then
carries a mix of two windows that both hold the target share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fusionforge.mixers.items import NUMBERS, ItemBatch
from fusionforge.mixers.pack_items import MEDIA_SPAN
from fusionforge.mixers.packing import LONG, Packed, pack_window, sort_by

SEGMENT_TYPE = pa.struct([
    ("sample_id", pa.string()), ("source", pa.string()), ("modality", pa.string()), ("epoch", pa.int32()),
    ("piece", pa.int32()), ("sample_start", pa.int64()), ("length", pa.int64()), ("offset", pa.int64()),
    ("vision_tokens", pa.int64()), ("split", pa.bool_()), ("partition", pa.int64()), ("row", pa.int64()),
    ("media", pa.list_(MEDIA_SPAN)),
])
WINDOW_SCHEMA = pa.schema([
    ("window", pa.int64()), ("tokens", pa.int64()), ("text_tokens", pa.int64()), ("vision_tokens", pa.int64()),
    ("padding", pa.int64()), ("items", pa.int32()), ("segments", pa.list_(SEGMENT_TYPE)),
    ("cu_seqlens", pa.list_(pa.int32())),
])
PLAN_SCHEMA = pa.schema([("sequence_id", pa.int64()), *WINDOW_SCHEMA])


def interleave(tokens: np.ndarray, vision: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sequence order whose every prefix keeps the window's vision share (see the module docstring)."""
    share = vision.sum() / max(1, tokens.sum())
    excess = vision - share * tokens
    key = np.empty(len(tokens))
    for group in (excess > 0, excess <= 0):
        members = rng.permutation(np.flatnonzero(group))
        weight = np.abs(excess[members])
        total = weight.sum()
        if total > 0:
            key[members] = (np.cumsum(weight) - weight / 2) / total
        else:
            key[members] = (np.arange(len(members)) + 0.5) / max(1, len(members))
    return np.argsort(key, kind="stable")


def plan_window(window: Any, seq_len: int, n_sequences: int, seq_vision_cap: int | None,
                seed: int) -> tuple[pa.Table, ItemBatch]:
    """Pack one window; return its plan rows (WINDOW_SCHEMA, in interleaved order) and its leftovers."""
    items: ItemBatch = window.items
    packed = pack_window(items.kind, items.size, items.vision, seq_len, n_sequences if window.full else None,
                         seq_vision_cap)
    rows = _window_table(window.index, items, packed, seq_len, seed)
    rest = items.take(packed.rest_ref)
    if len(rest):
        rest = rest.with_rest(packed.rest_size, rest.offset + packed.rest_start)
    leftovers = ItemBatch.concat([items.take(packed.leftovers), rest])
    return rows, leftovers


def _window_table(index: int, items: ItemBatch, packed: Packed, seq_len: int, seed: int) -> pa.Table:
    is_long = items.kind[packed.ref] == LONG
    seg_vision = np.where(is_long, 0, items.vision[packed.ref])
    tokens = np.bincount(packed.seq, packed.length, packed.n_sequences).astype(np.int64)
    vision = np.bincount(packed.seq, seg_vision, packed.n_sequences).astype(np.int64)
    used = np.flatnonzero(tokens > 0)
    rng = np.random.default_rng((seed & 0xFFFFFFFFFFFFFFFF) << 32 | index)
    order = used[interleave(tokens[used], vision[used], rng)]
    rank = np.empty(packed.n_sequences, np.int64)
    rank[order] = np.arange(len(order))
    segs = sort_by(np.arange(len(packed.seq)), rank[packed.seq])  # sequence order, placement order inside
    seq, ref, length = rank[packed.seq[segs]], packed.ref[segs], packed.length[segs]
    seg_vision, is_long = seg_vision[segs], is_long[segs]
    counts = np.bincount(seq, minlength=len(order))
    seq_tokens, seq_vision = tokens[order], vision[order]
    before = np.cumsum(seq_tokens) - seq_tokens  # tokens of the window before each sequence
    position = np.cumsum(length) - length - np.repeat(before, counts)
    meta = items.meta.take(pa.array(ref))
    column = {name: _single(meta.column(name)) for name in meta.column_names}
    numbers = items.numbers[ref]
    number = {name: numbers[:, i] for i, name in enumerate(NUMBERS)}
    start = number["start"] + number["offset"] + packed.start[segs]
    split = is_long | (number["n_pieces"] > 1)
    segments = pa.StructArray.from_arrays(
        [column["sample_id"], column["source"], column["modality"], pa.array(number["epoch"], pa.int32()),
         pa.array(number["piece"], pa.int32()), pa.array(start), pa.array(length), pa.array(position),
         pa.array(seg_vision), pa.array(split), _known(number["partition"]), _known(number["row"]),
         _shift_media(column["media"], position)],
        fields=list(SEGMENT_TYPE))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    cu_offsets = offsets + np.arange(len(offsets), dtype=np.int32)
    cu_values = np.zeros(len(seq) + len(order), np.int32)
    cu_values[np.arange(len(seq)) + seq + 1] = position + length
    return pa.Table.from_arrays([
        pa.array(np.full(len(order), index, np.int64)), pa.array(seq_tokens), pa.array(seq_tokens - seq_vision),
        pa.array(seq_vision), pa.array(seq_len - seq_tokens), pa.array(counts.astype(np.int32)),
        pa.ListArray.from_arrays(pa.array(offsets), segments),
        pa.ListArray.from_arrays(pa.array(cu_offsets), pa.array(cu_values)),
    ], schema=WINDOW_SCHEMA)


def _known(values: np.ndarray) -> pa.Array:
    """-1 (unknown) becomes null."""
    unknown = values < 0
    return pa.array(values, pa.int64(), mask=unknown) if unknown.any() else pa.array(values, pa.int64())


def _single(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _shift_media(media: pa.ListArray, position: np.ndarray) -> pa.ListArray:
    """Media offsets are relative to their item; in the plan they are relative to the sequence."""
    spans = media.flatten()
    parents = pc.list_parent_indices(media).to_numpy()
    children = spans.flatten()  # the struct's fields, sliced like the struct
    at = MEDIA_SPAN.get_field_index("offset")
    children[at] = pc.add(children[at], pa.array(position[parents], pa.int64()))
    values = pa.StructArray.from_arrays(children, fields=list(MEDIA_SPAN))
    offsets = media.offsets.to_numpy()
    return pa.ListArray.from_arrays(pa.array(offsets - offsets[0]), values)
