"""Fold a pack plan (one row per packed sequence) into packing figures.

Accepted layout (``fusionforge pack``'s plan): one row per sequence with ``cu_seqlens`` (or a
``sequence_id``/``seq_id`` column) and ``segments``; per-sequence ``text_tokens`` and
``vision_tokens``; the capacity from ``padding`` (capacity = tokens + padding), else a ``seq_len``
column, else the step's ``seq_len`` setting. ``segments`` is a list of structs with ``length``
(tokens) and optionally ``source``, ``vision_tokens``, ``split`` and ``sample_start`` (a split
document counts once, at its segment that starts at token 0). Missing columns leave their figures out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.mixers.audit.histogram import LogHistogram

SEQUENCE_COLUMNS = ("sequence_id", "seq_id")
TEXT_COLUMNS = ("text_tokens", "n_text_tokens")
VISION_COLUMNS = ("vision_tokens", "n_vision_tokens")
SEGMENTS = "segments"
RATIO_RESOLUTION = 10_000  # per-sequence vision ratios are also counted in 1e-4 steps (share within a band)


@dataclass
class PlanState:
    """Sums over sequences, tokens per source, and per-sequence distributions."""

    sequences: int = 0
    text_tokens: int = 0
    vision_tokens: int = 0
    capacity: int = 0  # sum of seq_len over sequences whose capacity is known
    capacity_known: int = 0  # sequences with a known capacity
    used_with_capacity: int = 0  # tokens in those sequences (so padding = capacity - used)
    zero_vision: int = 0
    split_documents: int = 0
    split_segments: int = 0
    ratio_steps: dict[int, int] = field(default_factory=dict)  # round(ratio * RATIO_RESOLUTION) -> sequences
    source_tokens: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, "text"|"vision") -> tokens
    histograms: dict[str, LogHistogram] = field(default_factory=dict)

    def fold(self, batch: pa.RecordBatch, seq_len: int | None) -> None:
        """Add a batch of plan rows; ``seq_len`` is the step's sequence length when no column gives it."""
        if batch.num_rows == 0:
            return
        names = batch.schema.names
        text = _ints(batch, _pick(names, TEXT_COLUMNS))
        vision = _ints(batch, _pick(names, VISION_COLUMNS))
        used = text + vision
        self.sequences += batch.num_rows
        self.text_tokens += int(text.sum())
        self.vision_tokens += int(vision.sum())
        self.zero_vision += int((vision == 0).sum())
        if "padding" in names:
            capacity = used + _ints(batch, "padding")
        elif "seq_len" in names:
            capacity = _ints(batch, "seq_len")
        else:
            capacity = np.full(batch.num_rows, seq_len or 0)
        known = capacity > 0
        self.capacity += int(capacity[known].sum())
        self.capacity_known += int(known.sum())
        self.used_with_capacity += int(used[known].sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(used > 0, vision / used, np.nan)
            self._add("vision_ratio", ratio)
            steps = np.round(ratio[used > 0] * RATIO_RESOLUTION).astype(np.int64)
            steps, counts = np.unique(steps, return_counts=True)
            for step, n in zip(steps.tolist(), counts.tolist()):
                self.ratio_steps[step] = self.ratio_steps.get(step, 0) + n
            self._add("padding_fraction", np.where(known, (capacity - used) / capacity, np.nan))
        self._add("tokens", used.astype(np.float64))
        if SEGMENTS in names:
            self._segments(batch.column(SEGMENTS))

    def _segments(self, segments: pa.Array) -> None:
        self._add("items", pc.fill_null(pc.list_value_length(segments), 0).to_numpy(zero_copy_only=False))
        items = pc.list_flatten(segments)
        fields = {items.type.field(i).name for i in range(items.type.num_fields)}
        if "split" in fields:
            split = pc.fill_null(pc.struct_field(items, "split"), False)
            self.split_segments += pc.sum(split.cast(pa.int64())).as_py() or 0
            if "sample_start" in fields:
                first = pc.and_(split, pc.equal(pc.fill_null(pc.struct_field(items, "sample_start"), 0), 0))
                self.split_documents += pc.sum(first.cast(pa.int64())).as_py() or 0
        if "source" not in fields or "length" not in fields or len(items) == 0:
            return
        length = pc.fill_null(pc.struct_field(items, "length"), 0).cast(pa.int64())
        vision = (
            pc.fill_null(pc.struct_field(items, "vision_tokens"), 0).cast(pa.int64())
            if "vision_tokens" in fields
            else pa.array(np.zeros(len(items), np.int64))
        )
        table = pa.table(
            {
                "source": pc.fill_null(pc.struct_field(items, "source").cast(pa.string()), "unknown"),
                "vision": vision,
                "text": pc.subtract(length, vision),
            }
        )
        sums = table.group_by(["source"]).aggregate([("text", "sum"), ("vision", "sum")])
        columns = (sums.column(c).to_pylist() for c in ("source", "text_sum", "vision_sum"))
        for source, text, vision_sum in zip(*columns):
            for kind, n in (("text", text), ("vision", vision_sum)):
                self.source_tokens[(source, kind)] = self.source_tokens.get((source, kind), 0) + n

    def _add(self, name: str, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if values.size:
            self.histograms.setdefault(name, LogHistogram()).add(values)

    def merge(self, other: PlanState) -> PlanState:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, n in other.ratio_steps.items():
            self.ratio_steps[key] = self.ratio_steps.get(key, 0) + n
        for key, n in other.source_tokens.items():
            self.source_tokens[key] = self.source_tokens.get(key, 0) + n
        for key, histogram in other.histograms.items():
            self.histograms.setdefault(key, LogHistogram()).merge(histogram)
        return self

    def scaled(self, factor: float) -> PlanState:
        out = PlanState(**{n: getattr(self, n) * factor for n in _COUNTS})  # rounded when reported
        out.ratio_steps = {k: n * factor for k, n in self.ratio_steps.items()}
        out.source_tokens = {k: n * factor for k, n in self.source_tokens.items()}
        out.histograms = {k: h.scaled(factor) for k, h in self.histograms.items()}
        return out

    def share_within(self, target: float, band: float) -> float | None:
        """Share of sequences whose vision ratio is within ``band`` of ``target`` (at 1e-4 resolution)."""
        total = sum(self.ratio_steps.values())
        if not total:
            return None
        low, high = (target - band) * RATIO_RESOLUTION - 1e-6, (target + band) * RATIO_RESOLUTION + 1e-6
        return sum(n for step, n in self.ratio_steps.items() if low <= step <= high) / total


_COUNTS = (
    "sequences",
    "text_tokens",
    "vision_tokens",
    "capacity",
    "capacity_known",
    "used_with_capacity",
    "zero_vision",
    "split_documents",
    "split_segments",
)


def is_plan_schema(names: list[str]) -> bool:
    return SEGMENTS in names and ("cu_seqlens" in names or _pick(names, SEQUENCE_COLUMNS) is not None)


def _ints(batch: pa.RecordBatch, name: str | None) -> np.ndarray:
    if name is None:
        return np.zeros(batch.num_rows, np.int64)
    return pc.fill_null(batch.column(name), 0).cast(pa.int64()).to_numpy(zero_copy_only=False)


def _pick(names: list[str], candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in names), None)
