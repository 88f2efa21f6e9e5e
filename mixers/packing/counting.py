"""The counting pass of ``pack``: records -> token counts -> pieces, written as one items part per partition.

``PackItems`` (stateless for the executor: its tokenizer is built once per worker process by the
executor's stage cache, so on Ray it runs inside each partition's task, no actor pool) counts text
and vision tokens, lays each record out and cuts it into pieces; the partition writer stores one row per piece in
``_work/items/part-{partition}.parquet`` and returns what the planner needs to know without reading
the parts again: tokens per source and kind, and token sums per hash bucket (for the mixture).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.mixers.mixture import HASH_BUCKETS, hash_bucket, record_hash
from fusionforge.mixers.packing.layout import FPS_COLUMN, FRAMES_COLUMN, LayoutOptions, Wrappers, pieces, record_layout
from fusionforge.mixers.tokens.text import TextTokens
from fusionforge.mixers.tokens.vision import get_preset
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.io import WORK_DIR, atomic_path
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, Stage, add_drop_reasons, set_column

MEDIA_SPAN = pa.struct(
    [
        ("offset", pa.int64()),
        ("media_index", pa.int32()),
        ("kind", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("vision_tokens", pa.int64()),
        ("chunk_start", pa.int32()),
        ("chunk_end", pa.int32()),
    ]
)
PIECE_TYPE = pa.struct(
    [
        ("kind", pa.int8()),
        ("start", pa.int64()),
        ("length", pa.int64()),
        ("vision", pa.int64()),
        ("media", pa.list_(MEDIA_SPAN)),
    ]
)
ITEMS_SCHEMA = pa.schema(
    [
        (S.ID, pa.string()),
        (S.SOURCE, pa.string()),
        (S.MODALITY, pa.string()),
        (S.INPUT_FILE, pa.string()),
        (S.INPUT_POSITION, pa.int64()),
        ("row", pa.int64()),
        ("u", pa.float64()),
        ("record_tokens", pa.int64()),
        ("reject", pa.string()),
        ("piece", pa.int32()),
        ("n_pieces", pa.int32()),
        ("kind", pa.int8()),
        ("start", pa.int64()),
        ("length", pa.int64()),
        ("vision", pa.int64()),
        ("media", pa.list_(MEDIA_SPAN)),
    ]
)
ITEMS_DIR = f"{WORK_DIR}/items"


@register
class PackItems(Stage):
    """``mixers_pack_items_v1``: text and vision tokens, the layout's pieces, and oversize rejections.

    Fills ``text_tokens`` and ``vision_tokens``, adds ``__pieces`` (kind, token range, vision tokens and
    the media each piece holds), ``__u`` (the record's mixture hash) and ``__resized`` (media shrunk
    to fit); a record that cannot fit even shrunk gets ``drop_reason`` ``mixers_pack_items_v1:oversize_*``.
    """

    name: ClassVar[str] = "mixers_pack_items_v1"
    resources: ClassVar[Resources] = Resources(batch_size=512)

    def __init__(
        self,
        seq_len: int,
        preset: str = "kimi-k25",
        preset_overrides: dict[str, Any] | None = None,
        tokenizer: str | None = None,
        pattern: str | None = None,
        seq_vision_cap: int | None = None,
        video_group_tokens: int | None = None,
        eos: bool = True,
        hash_seed: int = 0,
    ) -> None:
        self.text = TextTokens(tokenizer, pattern)
        counter = self.text.counter
        preset_obj = get_preset(preset, **(preset_overrides or {}))
        self.wrappers = Wrappers(preset_obj, None if counter.estimated else counter.encode_markup)
        self.opts = LayoutOptions(preset_obj, seq_len, seq_vision_cap, video_group_tokens, eos)
        self.hash_seed = hash_seed

    def __call__(self, batch: pa.Table) -> pa.Table:
        batch = self.text(batch)
        part_tokens = batch.column(S.stage_column(TextTokens.name, "part_tokens")).to_pylist()
        extra = [c for c in (FRAMES_COLUMN, FPS_COLUMN) if c in batch.column_names]
        columns = [S.MODALITY, S.SEGMENTS, S.MEDIA, *extra]
        records = batch.select(columns).to_pylist()
        ids = batch.column(S.ID).to_pylist()
        out_pieces, vision, resized, reasons = [], [], [], []
        for record, parts in zip(records, part_tokens):
            layout = record_layout(record, parts, self.opts, self.wrappers)
            resized.append(layout.resized)
            vision.append(layout.vision)
            reasons.append(f"{self.name}:{layout.reject.split(':')[0]}" if layout.reject else None)
            out_pieces.append([] if layout.reject else [_piece_row(p) for p in pieces(layout, self.opts)])
        batch = set_column(batch, S.VISION_TOKENS, pa.array(vision, pa.int64()))
        batch = set_column(batch, S.stage_column(self.name, "pieces"), pa.array(out_pieces, pa.list_(PIECE_TYPE)))
        batch = set_column(
            batch, S.stage_column(self.name, "u"), pa.array([record_hash(self.hash_seed, i) for i in ids], pa.float64())
        )
        batch = set_column(batch, S.stage_column(self.name, "resized"), pa.array(resized, pa.int32()))
        return add_drop_reasons(batch, pa.array(reasons, pa.string()))


def _piece_row(piece) -> dict[str, Any]:
    media = [
        {
            "offset": offset,
            "media_index": b.part,
            "kind": b.kind,
            "width": b.width,
            "height": b.height,
            "vision_tokens": b.vision,
            "chunk_start": b.chunk_start,
            "chunk_end": b.chunk_end,
        }
        for offset, b in piece.blocks
    ]
    return {"kind": piece.kind, "start": piece.start, "length": piece.length, "vision": piece.vision, "media": media}


@dataclass(frozen=True)
class ItemsLayout:
    """Where the items parts go (the writer runs on workers; this is all it needs)."""

    out_dir: str


def write_items(layout: ItemsLayout, partition: int, table: pa.Table) -> dict[str, Any]:
    """Explode one partition's pieces into item rows; write the part; return the summary (its marker's data)."""
    name = PackItems.name
    rows: list[dict[str, Any]] = []
    tokens: dict[str, dict[str, int]] = {}
    histograms: dict[str, dict[int, int]] = {}
    rejected: dict[str, int] = {}
    resized = 0
    columns = table.select(
        [
            S.ID,
            S.SOURCE,
            S.MODALITY,
            S.INPUT_FILE,
            S.INPUT_POSITION,
            S.DROP_REASON,
            S.stage_column(name, "pieces"),
            S.stage_column(name, "u"),
            S.stage_column(name, "resized"),
        ]
    ).to_pylist()
    for row, record in enumerate(columns):
        base = {
            S.ID: record[S.ID],
            S.SOURCE: record[S.SOURCE],
            S.MODALITY: record[S.MODALITY],
            S.INPUT_FILE: record[S.INPUT_FILE],
            S.INPUT_POSITION: record[S.INPUT_POSITION],
            "row": row,
            "u": record[f"{name}__u"],
        }
        resized += record[f"{name}__resized"] or 0
        piece_rows = record[f"{name}__pieces"] or []
        reject = record[S.DROP_REASON]
        if reject or not piece_rows:
            reason = reject or f"{name}:empty"
            rejected[reason] = rejected.get(reason, 0) + 1
            rows.append(
                {
                    **base,
                    "record_tokens": 0,
                    "reject": reason,
                    "piece": -1,
                    "n_pieces": 0,
                    "kind": -1,
                    "start": 0,
                    "length": 0,
                    "vision": 0,
                    "media": [],
                }
            )
            continue
        total = sum(p["length"] for p in piece_rows)
        per_source = tokens.setdefault(record[S.SOURCE], {"0": 0, "1": 0, "2": 0, "vision": 0})
        hist = histograms.setdefault(record[S.SOURCE], {})
        bucket = hash_bucket(base["u"])
        hist[bucket] = hist.get(bucket, 0) + total
        for index, piece in enumerate(piece_rows):
            per_source[str(piece["kind"])] += piece["length"]
            per_source["vision"] += piece["vision"]
            rows.append(
                {**base, "record_tokens": total, "reject": None, "piece": index, "n_pieces": len(piece_rows), **piece}
            )
    out = Path(layout.out_dir)
    with atomic_path(out / ITEMS_DIR / f"part-{partition:06d}.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=ITEMS_SCHEMA), tmp)
    return {
        "partition": partition,
        "records": table.num_rows,
        "tokens": tokens,
        "rejected": rejected,
        "resized": resized,
        "histograms": {s: {str(k): v for k, v in h.items()} for s, h in histograms.items()},
        "sources": sorted({r[S.SOURCE] for r in columns}),
    }


@dataclass
class CountTotals:
    """The counting markers folded into what the planner needs: token totals per source and kind, token sums
    per hash bucket, the partitions that hold each source, rejections and resized media.

    Folded one marker at a time: a marker's histogram, parsed from JSON, is a Python dict of up to
    ``HASH_BUCKETS`` entries (about 100 KB for a shard of 2,000 records), so keeping every marker grew
    the driver by about 50 MB at 515 shards.
    """

    tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    histograms: dict[str, np.ndarray] = field(default_factory=dict)
    partitions: dict[str, list[int]] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    resized: int = 0

    def add(self, summary: dict[str, Any]) -> None:
        """Fold one partition's summary (``write_items``'s return, its marker's data) in."""
        for name in summary["sources"]:
            self.partitions.setdefault(name, []).append(summary["partition"])
        for name, counts in summary["tokens"].items():
            total = self.tokens.setdefault(name, {"0": 0, "1": 0, "2": 0, "vision": 0})
            for key, value in counts.items():
                total[key] += value
        for name, hist in summary["histograms"].items():
            array = self.histograms.setdefault(name, np.zeros(HASH_BUCKETS, np.int64))
            for bucket, value in hist.items():
                array[int(bucket)] += value
        for reason, count in summary["rejected"].items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count
        self.resized += summary["resized"]

    @property
    def source_tokens(self) -> dict[str, int]:
        """Each source's tokens of every kind (vision tokens are inside the kinds' lengths)."""
        return {name: kinds["0"] + kinds["1"] + kinds["2"] for name, kinds in self.tokens.items()}


def count_totals(summaries: Iterable[dict[str, Any]]) -> CountTotals:
    """``summaries`` folded into one ``CountTotals`` (pass a generator to hold one at a time)."""
    totals = CountTotals()
    for summary in summaries:
        totals.add(summary)
    return totals
