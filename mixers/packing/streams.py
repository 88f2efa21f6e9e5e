"""The item streams the window drawer reads: per kind, the chosen pieces of every source in a seeded order.

Each (kind, source) stream walks the source's epochs; in each epoch it visits the source's input
shards in a seeded order and the shard's pieces in a seeded order, keeping one shard in memory.
Sources are merged per kind by their token shares (the source furthest behind its share goes next),
so every stretch of a stream carries the mixture, not only the whole run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fusionforge.mixers.mixture import MixturePlan, SourceTarget, epoch_order
from fusionforge.mixers.packing.counting import CountTotals
from fusionforge.mixers.packing.items import ItemBatch, Stream
from fusionforge.mixers.packing.packer import LONG, TEXT, VISION
from fusionforge.mixers.packing.windows import WindowDrawer
from fusionforge.pipelines.core import schema as S


def source_items(
    items_dir: Path, partitions: list[int], source: str, kind: int, target: SourceTarget, seed: int
) -> Iterator[ItemBatch]:
    """The pieces of one kind of one source, epoch by epoch, in a seeded order: one batch per input shard."""
    epochs = target.epochs + (1 if target.threshold > 0 else 0)
    for epoch in range(epochs):
        for index in epoch_order(seed, source, epoch, len(partitions)):
            partition = partitions[index]
            table = pq.read_table(
                items_dir / f"part-{partition:06d}.parquet", filters=[(S.SOURCE, "=", source), ("kind", "=", kind)]
            )
            if epoch == target.epochs:
                table = table.filter(pc.less(table.column("u"), target.threshold))
            table = table.take(pa.array(epoch_order(seed, f"{source}/{partition}", epoch, table.num_rows)))
            sources = pa.array([source] * table.num_rows, pa.string())
            meta = pa.table(
                {
                    "sample_id": table.column(S.ID),
                    "source": sources,
                    "modality": table.column(S.MODALITY),
                    "media": table.column("media"),
                }
            )
            yield ItemBatch.build(
                meta,
                kind=kind,
                size=table.column("length").to_numpy(),
                vision=table.column("vision").to_numpy(),
                epoch=epoch,
                piece=table.column("piece").to_numpy(),
                n_pieces=table.column("n_pieces").to_numpy(),
                start=table.column("start").to_numpy(),
                partition=partition,
                row=table.column("row").to_numpy(),
            )


def merge_by_tokens(streams: dict[str, Iterator[ItemBatch]], weights: dict[str, float]) -> Iterator[ItemBatch]:
    """One stream from several: the source with the fewest tokens emitted per unit of weight goes next.

    Item j of a source is due at (tokens of the source before j) / weight; the merge is the order of
    those times (ties: sources by name), emitted in blocks: every item due no later than the last
    buffered item of each unfinished source is final, since what a source has not read yet is due later.
    """
    names = sorted(n for n in streams if weights.get(n, 0) > 0)
    pending: list[ItemBatch | None] = [None] * len(names)
    due: list[np.ndarray] = [np.zeros(0)] * len(names)
    emitted = [0] * len(names)
    ended = [False] * len(names)
    while True:
        for i, name in enumerate(names):
            while not ended[i] and (pending[i] is None or not len(pending[i])):
                batch = next(streams[name], None)
                if batch is None:
                    ended[i] = True
                    break
                before = emitted[i] + np.cumsum(batch.size) - batch.size
                emitted[i] += int(batch.size.sum())
                pending[i], due[i] = batch, before / weights[name]
        live = [i for i in range(len(names)) if pending[i] is not None and len(pending[i])]
        if not live:
            return
        open_sources = [i for i in live if not ended[i]]
        bound = min(due[i][-1] for i in open_sources) if open_sources else np.inf
        parts, times, sources = [], [], []
        for i in live:
            k = int(np.searchsorted(due[i], bound, side="right"))
            parts.append(pending[i].slice(0, k))
            times.append(due[i][:k])
            sources.append(np.full(k, i))
            pending[i], due[i] = pending[i].slice(k, len(pending[i])), due[i][k:]
        if len(parts) == 1:
            yield parts[0]
            continue
        order = np.lexsort((np.concatenate(sources), np.concatenate(times)))
        yield ItemBatch.concat(parts).take(order)


def build_drawer(
    items_dir: Path, totals: CountTotals, plan: MixturePlan, cfg: Any, seed: int
) -> tuple[WindowDrawer, float]:
    """The drawer over the three merged streams, and the corpus's own vision share after mixing."""
    partitions, kinds = totals.partitions, totals.tokens
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
    ratio = cfg.vision_ratio if cfg.vision_ratio is not None else natural
    drawer = WindowDrawer(
        streams[VISION],
        streams[TEXT],
        streams[LONG],
        cfg.seq_len,
        cfg.window,
        ratio,
        text,
        sum(selected[LONG].values()),
    )
    return drawer, natural
