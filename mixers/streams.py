"""The item streams the window drawer reads: per kind, the chosen pieces of every source in a seeded order.

Each (kind, source) stream walks the source's epochs; in each epoch it visits the source's input
shards in a seeded order and the shard's pieces in a seeded order, keeping one shard in memory.
Sources are merged per kind by their token shares (the source furthest behind its share goes next),
so every stretch of a stream carries the mixture, not only the whole run.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fusionforge.mixers.mixture import MixturePlan, SourceTarget, epoch_order
from fusionforge.mixers.pack_items import MEDIA_SPAN
from fusionforge.mixers.packing import LONG, TEXT, VISION
from fusionforge.mixers.windows import Item, Stream, WindowDrawer
from fusionforge.pipelines.core import schema as S

SEGMENT_TYPE = pa.struct([
    ("sample_id", pa.string()), ("source", pa.string()), ("modality", pa.string()), ("epoch", pa.int32()),
    ("piece", pa.int32()), ("sample_start", pa.int64()), ("length", pa.int64()), ("offset", pa.int64()),
    ("vision_tokens", pa.int64()), ("split", pa.bool_()), ("partition", pa.int64()), ("row", pa.int64()),
    ("media", pa.list_(MEDIA_SPAN)),
])
PLAN_SCHEMA = pa.schema([
    ("sequence_id", pa.int64()), ("window", pa.int64()), ("tokens", pa.int64()), ("text_tokens", pa.int64()),
    ("vision_tokens", pa.int64()), ("padding", pa.int64()), ("items", pa.int32()),
    ("segments", pa.list_(SEGMENT_TYPE)), ("cu_seqlens", pa.list_(pa.int32())),
])


def source_items(items_dir: Path, partitions: list[int], source: str, kind: int, target: SourceTarget,
                 seed: int) -> Iterator[Item]:
    """The pieces of one kind of one source, epoch by epoch, in a seeded order."""
    epochs = target.epochs + (1 if target.threshold > 0 else 0)
    for epoch in range(epochs):
        for index in epoch_order(seed, source, epoch, len(partitions)):
            partition = partitions[index]
            table = pq.read_table(items_dir / f"part-{partition:06d}.parquet",
                                  filters=[(S.SOURCE, "=", source), ("kind", "=", kind)])
            rows = table.to_pylist()
            if epoch == target.epochs:
                rows = [r for r in rows if r["u"] < target.threshold]
            for position in epoch_order(seed, f"{source}/{partition}", epoch, len(rows)):
                row = rows[position]
                info = {"id": row[S.ID], "source": source, "modality": row[S.MODALITY], "epoch": epoch,
                        "piece": row["piece"], "n_pieces": row["n_pieces"], "start": row["start"],
                        "media": row["media"], "partition": partition, "row": row["row"]}
                yield Item(kind, row["length"], row["vision"], info)


def merge_by_tokens(streams: dict[str, Iterator[Item]], weights: dict[str, float]) -> Iterator[Item]:
    """One stream from several: the source with the fewest tokens emitted per unit of weight goes next."""
    names = sorted(n for n in streams if weights.get(n, 0) > 0)
    heap = [(0.0, i) for i in range(len(names))]
    emitted = [0] * len(names)
    while heap:
        _, i = heapq.heappop(heap)
        item = next(streams[names[i]], None)
        if item is None:
            continue
        yield item
        emitted[i] += item.size
        heapq.heappush(heap, (emitted[i] / weights[names[i]], i))


def build_drawer(items_dir: Path, summaries: list[dict[str, Any]], plan: MixturePlan, cfg: Any,
                 seed: int) -> tuple[WindowDrawer, float]:
    """The drawer over the three merged streams, and the corpus's own vision share after mixing."""
    partitions: dict[str, list[int]] = {}
    kinds: dict[str, dict[str, int]] = {}
    for summary in summaries:
        for name in summary["sources"]:
            partitions.setdefault(name, []).append(summary["partition"])
        for name, counts in summary["tokens"].items():
            total = kinds.setdefault(name, {"0": 0, "1": 0, "2": 0, "vision": 0})
            for key, value in counts.items():
                total[key] += value
    scale = {n: t.target / t.tokens for n, t in plan.targets.items() if t.tokens}
    selected = {k: {n: scale[n] * kinds[n][str(k)] for n in scale} for k in (VISION, TEXT, LONG)}
    streams = {}
    for kind in (VISION, TEXT, LONG):
        per_source = {n: source_items(items_dir, partitions[n], n, kind, plan.targets[n], seed) for n in scale}
        streams[kind] = Stream(merge_by_tokens(per_source, selected[kind]))
    all_tokens = sum(sum(v.values()) for v in selected.values())
    vision = sum(scale[n] * kinds[n]["vision"] for n in scale)
    natural = vision / all_tokens if all_tokens else 0.0
    text = sum(selected[TEXT].values()) + sum(selected[LONG].values())
    long_share = sum(selected[LONG].values()) / text if text else 0.0
    ratio = cfg.vision_ratio if cfg.vision_ratio is not None else natural
    drawer = WindowDrawer(streams[VISION], streams[TEXT], streams[LONG], cfg.seq_len, cfg.window, ratio, long_share)
    return drawer, natural
