"""Packed windows as plan rows: sequence order and segment positions (numbers, on workers), then the rows
themselves (segments, ``cu_seqlens``), built with Arrow for several windows at once in the driver.

Sequence order inside a window (``kernels.order_sequences``): the sequences are interleaved so
that every run of consecutive sequences carries the window's vision share, not only the whole
window. Each sequence's excess ``vision - share * tokens`` is positive (vision-rich) or not; both
groups are shuffled with the seed and merged by their cumulative excess (a sequence is placed where
its group's running total reaches its midpoint, as a share of the group's total), so the running
excess never strays further than about one sequence's worth from zero. A run of B sequences that
straddles two windows then carries a mix of two windows that both hold the target share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.mixers.packing.counting import MEDIA_SPAN
from fusionforge.mixers.packing.items import NUMBERS, ItemBatch
from fusionforge.mixers.packing.packer import LONG, pack_window

SEGMENT_TYPE = pa.struct(
    [
        ("sample_id", pa.string()),
        ("source", pa.string()),
        ("modality", pa.string()),
        ("epoch", pa.int32()),
        ("piece", pa.int32()),
        ("sample_start", pa.int64()),
        ("length", pa.int64()),
        ("offset", pa.int64()),
        ("vision_tokens", pa.int64()),
        ("split", pa.bool_()),
        ("partition", pa.int64()),
        ("row", pa.int64()),
        ("media", pa.list_(MEDIA_SPAN)),
    ]
)
WINDOW_SCHEMA = pa.schema(
    [
        ("window", pa.int64()),
        ("tokens", pa.int64()),
        ("text_tokens", pa.int64()),
        ("vision_tokens", pa.int64()),
        ("padding", pa.int64()),
        ("items", pa.int32()),
        ("segments", pa.list_(SEGMENT_TYPE)),
        ("cu_seqlens", pa.list_(pa.int32())),
    ]
)
PLAN_SCHEMA = pa.schema([("sequence_id", pa.int64()), *WINDOW_SCHEMA])


@dataclass
class WindowPlan:
    """A packed window in numbers (what a worker returns): sequences in plan order, their segments in order."""

    index: int
    tokens: np.ndarray  # per sequence
    vision: np.ndarray  # per sequence
    counts: np.ndarray  # segments per sequence
    ref: np.ndarray  # per segment: the item (position in the window's batch)
    start: np.ndarray  # per segment: tokens of the item before it (long text)
    length: np.ndarray
    position: np.ndarray  # per segment: its offset in the sequence
    leftovers: np.ndarray  # items that found no room
    rest_ref: np.ndarray  # long text not used: item, tokens used so far, tokens left
    rest_start: np.ndarray
    rest_size: np.ndarray


def plan_window(
    index: int,
    full: bool,
    kind: np.ndarray,
    size: np.ndarray,
    vision: np.ndarray,
    seq_len: int,
    n_sequences: int,
    seq_vision_cap: int | None,
    seed: int,
) -> WindowPlan:
    """Pack one window (numbers only: a worker needs no strings) and put its sequences in interleaved order."""
    from fusionforge.mixers.packing.kernels import order_sequences

    packed = pack_window(kind, size, vision, seq_len, n_sequences if full else None, seq_vision_cap)
    seg_vision = np.where(kind[packed.ref] == LONG, 0, vision[packed.ref])
    mixed = (seed & 0xFFFFFFFF) << 32 ^ index * 0x9E3779B1 ^ seed >> 32 & 0xFFFFFFFF
    _, tokens, seq_vision, counts, segs, position = order_sequences(
        packed.n_sequences, packed.seq, packed.length, seg_vision, np.uint64(mixed & 0xFFFFFFFFFFFFFFFF)
    )
    return WindowPlan(
        index,
        tokens,
        seq_vision,
        counts,
        packed.ref[segs],
        packed.start[segs],
        packed.length[segs],
        position,
        packed.leftovers,
        packed.rest_ref,
        packed.rest_start,
        packed.rest_size,
    )


def leftovers(items: ItemBatch, plan: WindowPlan) -> ItemBatch:
    """What goes back to the streams: items that found no room, and the unused part of long text."""
    rest = items.take(plan.rest_ref)
    if len(rest):
        rest = rest.with_rest(plan.rest_size, rest.offset + plan.rest_start)
    return ItemBatch.concat([items.take(plan.leftovers), rest])


def plan_rows(windows: list[tuple[ItemBatch, WindowPlan]], seq_len: int) -> pa.Table:
    """The plan rows (WINDOW_SCHEMA) of several packed windows, built with one pass of Arrow work."""
    plans = [plan for _, plan in windows]
    counts = np.concatenate([p.counts for p in plans])
    tokens, vision = np.concatenate([p.tokens for p in plans]), np.concatenate([p.vision for p in plans])
    position, length = np.concatenate([p.position for p in plans]), np.concatenate([p.length for p in plans])
    window = np.repeat([p.index for p in plans], [len(p.tokens) for p in plans])
    numbers = np.concatenate([items.numbers[plan.ref] for items, plan in windows])
    number = {name: numbers[:, i] for i, name in enumerate(NUMBERS)}
    first = np.cumsum([0] + [len(items) for items, _ in windows[:-1]])
    ref = np.concatenate([plan.ref + at for plan, at in zip(plans, first)])  # into the windows' items, end to end
    meta = pa.concat_tables([items.meta for items, _ in windows]).take(pa.array(ref))
    column = {name: _single(meta.column(name)) for name in meta.column_names}
    is_long = number["kind"] == LONG
    start = number["start"] + number["offset"] + np.concatenate([p.start for p in plans])
    segments = pa.StructArray.from_arrays(
        [
            column["sample_id"],
            column["source"],
            column["modality"],
            pa.array(number["epoch"], pa.int32()),
            pa.array(number["piece"], pa.int32()),
            pa.array(start),
            pa.array(length),
            pa.array(position),
            pa.array(np.where(is_long, 0, number["vision"])),
            pa.array(is_long | (number["n_pieces"] > 1)),
            _known(number["partition"]),
            _known(number["row"]),
            _shift_media(column["media"], position),
        ],
        fields=list(SEGMENT_TYPE),
    )
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    cu_offsets = offsets + np.arange(len(offsets), dtype=np.int32)
    cu_values = np.zeros(len(length) + len(counts), np.int32)
    cu_values[np.arange(len(length)) + np.repeat(np.arange(len(counts)), counts) + 1] = position + length
    return pa.Table.from_arrays(
        [
            pa.array(window, pa.int64()),
            pa.array(tokens),
            pa.array(tokens - vision),
            pa.array(vision),
            pa.array(seq_len - tokens),
            pa.array(counts.astype(np.int32)),
            pa.ListArray.from_arrays(pa.array(offsets), segments),
            pa.ListArray.from_arrays(pa.array(cu_offsets), pa.array(cu_values)),
        ],
        schema=WINDOW_SCHEMA,
    )


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
