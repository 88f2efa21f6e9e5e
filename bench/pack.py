"""Packing at a target vision ratio: fusionforge versus the packers a user would otherwise use.

Same items for every packer, drawn from a realistic synthetic mix to 10% vision tokens:
text lengths log-normal (median 800 tokens, sigma 1.2, a tail past L), image-text pairs from
64x64 to 4K with real aspect ratios (kimi-k25 token rule), interleaved documents with 1-5 images,
videos of 4-600 frames (kimi-k25: one frame's tokens per 4-frame chunk, groups of at most L).
Anchors get documents longer than L pre-cut into L-token chunks (they cannot split):

(a) Energon's documented example policy: per buffer of 1,000 items, sort by length, fill in order;
(b) NeMo VLM's ``greedy_knapsack`` per buffer of 1,000 items;
(c) offline first-fit decreasing over all items.

Every packer plans the same items in the same process, timed in CPU seconds (robust when other work
shares the machine), fastest of ``--repeat`` interleaved runs; items/s counts each packer's own
items (the anchors get more: long documents pre-cut into L-token chunks).

    python bench/pack.py --tokens 60e6
"""

from __future__ import annotations

import argparse
import bisect
import math
import time
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.mixers.packing.counting import MEDIA_SPAN, _piece_row
from fusionforge.mixers.packing.items import ItemBatch, Stream
from fusionforge.mixers.packing.kernels import order_sequences
from fusionforge.mixers.packing.layout import Block, Layout, LayoutOptions, pieces
from fusionforge.mixers.packing.packer import LONG, TEXT, VISION, pack_window
from fusionforge.mixers.packing.plan_table import SEGMENT_TYPE
from fusionforge.mixers.packing.planner import InlineRunner, PlanParams, run_windows
from fusionforge.mixers.packing.streams import merge_by_tokens
from fusionforge.mixers.packing.windows import WindowDrawer
from fusionforge.mixers.tokens.vision import get_preset

ASPECTS = [(1, 1), (4, 3), (3, 4), (16, 9), (9, 16), (3, 2), (2, 3), (21, 9), (1, 2), (2, 1)]
PRESET = get_preset("kimi-k25")


def image_block(rng, index=0):
    aspect = ASPECTS[rng.integers(len(ASPECTS))]
    long_side = int(np.exp(rng.uniform(np.log(64), np.log(3840))))
    scale = long_side / max(aspect)
    count = PRESET.image(max(1, int(aspect[0] * scale)), max(1, int(aspect[1] * scale)))
    return Block("image", count.tokens + 4, count.tokens, index)


def text_len(rng, median, sigma=1.2):
    return max(1, int(rng.lognormal(np.log(median), sigma)))


def make_records(rng, seq_len, n_text, n_vision):
    """Layouts of text documents and vision-bearing records (pairs, interleaved documents, videos)."""
    opts = LayoutOptions(PRESET, seq_len)
    items = []
    for _ in range(n_text):
        items.append(("text", [Block("text", text_len(rng, 800)), Block("eos", 1)]))
    for _ in range(n_vision):
        kind = rng.choice(["pair", "interleaved", "video"], p=[0.7, 0.25, 0.05])
        if kind == "pair":
            blocks = [image_block(rng), Block("text", text_len(rng, 20, 0.8)), Block("eos", 1)]
        elif kind == "interleaved":
            blocks = []
            for i in range(rng.integers(1, 6)):
                blocks += [Block("text", text_len(rng, 150)), image_block(rng, i)]
            blocks += [Block("text", text_len(rng, 150)), Block("eos", 1)]
        else:
            width, height = [(640, 360), (1280, 720), (1920, 1080), (480, 640)][rng.integers(4)]
            count = PRESET.video(width, height, int(rng.integers(4, 601)))
            per_group = max(1, (seq_len - 2) // (count.tokens_per_chunk + 11))
            blocks = []
            for start in range(0, count.chunks, per_group):
                n = min(per_group, count.chunks - start)
                blocks.append(Block("video", n * (count.tokens_per_chunk + 11), n * count.tokens_per_chunk))
            blocks += [Block("text", text_len(rng, 30, 0.8)), Block("eos", 1)]
        items.append((kind, blocks))
    records = []
    for kind, blocks in items:
        layout = Layout(blocks)
        records.append((kind, pieces(layout, opts)))
    return records


def draw_to_ratio(rng, records, ratio):
    """Shuffle, then keep vision-bearing records only while vision stays within `ratio` of all tokens."""
    order = rng.permutation(len(records))
    kept, tokens, vision = [], 0, 0
    for i in order:
        kind, parts = records[i]
        size = sum(p.length for p in parts)
        v = sum(p.vision for p in parts)
        if v and vision + v > ratio * (tokens + size):
            continue
        kept.append((i, parts))
        tokens += size
        vision += v
    return kept


def items_for_fusionforge(kept, batch=10_000):
    """Per kind, the drawn pieces as item batches (one per 10,000 pieces, as input shards give them)."""
    rows = [
        (p.kind, p.length, p.vision, f"d{doc}", j, len(parts), p.start, _piece_row(p)["media"])
        for doc, parts in kept
        for j, p in enumerate(parts)
    ]
    by_kind = {}
    for kind in (VISION, TEXT, LONG):
        mine = [r for r in rows if r[0] == kind]
        batches = []
        for first in range(0, len(mine), batch):
            part = mine[first : first + batch]
            n = len(part)
            meta = pa.table(
                {
                    "sample_id": [r[3] for r in part],
                    "source": ["bench"] * n,
                    "modality": ["x"] * n,
                    "media": pa.array([r[7] for r in part], pa.list_(MEDIA_SPAN)),
                }
            )
            batches.append(
                ItemBatch.build(
                    meta,
                    kind=kind,
                    size=[r[1] for r in part],
                    vision=[r[2] for r in part],
                    piece=[r[4] for r in part],
                    n_pieces=[r[5] for r in part],
                    start=[r[6] for r in part],
                )
            )
        by_kind[kind] = batches
    return by_kind, len(rows)


def items_for_anchors(kept, seq_len):
    """(size, vision, doc, split) with long text pre-cut into L chunks (Fewer-Truncations chunking)."""
    out = []
    for doc, parts in kept:
        for p in parts:
            if p.kind == LONG:
                for start in range(0, p.length, seq_len):
                    out.append((min(seq_len, p.length - start), 0, doc, True))
            else:
                out.append((p.length, p.vision, doc, len(parts) > 1))
    return out


# ------------------------------------------------------------------ anchors
def energon_example(items, seq_len, buffer=1000):
    bins = []
    for s in range(0, len(items), buffer):
        samples = sorted(items[s : s + buffer], key=lambda x: x[0])
        while samples:
            batch, length = [], 0
            while samples and length + samples[0][0] < seq_len:
                sample = samples.pop(0)
                batch.append(sample)
                length += sample[0]
            if not batch:  # an item of exactly L would loop forever in the example; it goes alone
                batch.append(samples.pop(0))
            bins.append(batch)
    return bins


def _search_for_fit(numbers, capacity):
    index = bisect.bisect(numbers, capacity)
    return -1 if index == 0 else index - 1


def greedy_knapsack(items, seq_len, buffer=1000):
    bins = []
    for s in range(0, len(items), buffer):
        chunk = sorted(items[s : s + buffer], key=lambda x: x[0])
        sizes = [x[0] for x in chunk]
        while sizes:
            knapsack, remaining = [], seq_len
            while True:
                idx = _search_for_fit(sizes, remaining)
                if idx == -1:
                    break
                remaining -= sizes[idx]
                sizes.pop(idx)
                knapsack.append(chunk.pop(idx))
            bins.append(knapsack)
    return bins


def first_fit_decreasing(items, seq_len):
    """Offline FFD; the first bin with room is found with a max segment tree (O(n log n))."""
    order = sorted(items, key=lambda x: -x[0])
    size = 1 << max(1, math.ceil(math.log2(len(order) + 1)))
    tree = [0] * (2 * size)
    bins = []
    for item in order:
        if tree[1] < item[0]:
            b = len(bins)
            bins.append([])
            node = size + b
            tree[node] = seq_len
            node //= 2
            while node:
                tree[node] = max(tree[2 * node], tree[2 * node + 1])
                node //= 2
        node = 1
        while node < size:
            node = 2 * node if tree[2 * node] >= item[0] else 2 * node + 1
        b = node - size
        bins[b].append(item)
        tree[node] -= item[0]
        node //= 2
        while node:
            tree[node] = max(tree[2 * node], tree[2 * node + 1])
            node //= 2
    return bins


# ------------------------------------------------------------------ metrics
def metrics(sequences, seq_len, target, batch=256, band=0.05):
    tokens = np.array([t for t, _ in sequences], np.int64)
    vision = np.array([v for _, v in sequences], np.int64)
    ratio = vision / np.maximum(tokens, 1)
    windows = [
        (vision[i : i + batch].sum() / tokens[i : i + batch].sum()) for i in range(0, len(tokens) - batch + 1, batch)
    ]
    csum_t, csum_v = np.concatenate([[0], np.cumsum(tokens)]), np.concatenate([[0], np.cumsum(vision)])
    sliding = (csum_v[batch:] - csum_v[:-batch]) / (csum_t[batch:] - csum_t[:-batch]) if len(tokens) >= batch else []
    return {
        "sequences": len(tokens),
        "padding": 1 - tokens.sum() / (len(tokens) * seq_len),
        "global": vision.sum() / tokens.sum(),
        "window_err": max((abs(w - target) for w in windows), default=float("nan")),
        "sliding_err": float(np.max(np.abs(np.asarray(sliding) - target))) if len(sliding) else float("nan"),
        "p5": float(np.percentile(ratio, 5)),
        "mean": float(ratio.mean()),
        "p95": float(np.percentile(ratio, 95)),
        "zero": float((vision == 0).mean()),
        "band": float((np.abs(ratio - target) <= band + 1e-12).mean()),
    }


def run_fusionforge(by_kind, n_items, seq_len, ratio, window):
    """Planning as ``fusionforge pack --executor local`` runs it once the items are counted: the merged per-kind
    streams, the window drawer, the packer and the plan rows (Arrow tables with segments and cu_seqlens)."""
    text = sum(int(b.size.sum()) for k in (TEXT, LONG) for b in by_kind[k])
    long = sum(int(b.size.sum()) for b in by_kind[LONG])
    tables = []
    started = time.process_time()
    streams = [Stream(merge_by_tokens({"bench": iter(by_kind[k])}, {"bench": 1.0})) for k in (VISION, TEXT, LONG)]
    drawer = WindowDrawer(*streams, seq_len, window, ratio, text, long)
    surplus = run_windows(drawer, PlanParams(seq_len, window, None, 0, 8), InlineRunner(), tables.append)
    seconds = time.process_time() - started
    plan = pa.concat_tables(tables)
    segments = pc.list_flatten(plan.column("segments")).combine_chunks().flatten()
    split_field, start_field = (SEGMENT_TYPE.get_field_index(n) for n in ("split", "sample_start"))
    split = int((segments[split_field].to_numpy(zero_copy_only=False) & (segments[start_field].to_numpy() == 0)).sum())
    left = sum(len(v) for v in surplus.values())
    sequences = list(zip(plan.column("tokens").to_pylist(), plan.column("vision_tokens").to_pylist()))
    return sequences, seconds, n_items, split, left


def first_call_seconds():
    """What the compiled kernels cost once per process (loaded from numba's cache, or compiled on a fresh install)."""
    started = time.perf_counter()
    pack_window(np.array([VISION, TEXT, LONG]), np.array([30, 20, 90]), np.array([20, 0, 0]), 64, None)
    order_sequences(2, np.array([0, 1]), np.array([30, 20]), np.array([20, 0]), np.uint64(0))
    return time.perf_counter() - started


def run_anchor(fn, items, seq_len):
    started = time.process_time()
    bins = fn(items, seq_len)
    seconds = time.process_time() - started
    split = len({doc for b in bins for (_, _, doc, is_split) in b if is_split})
    return [(sum(x[0] for x in b), sum(x[1] for x in b)) for b in bins], seconds, len(items), split, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=float, default=60e6, help="tokens in the drawn item set, per length")
    parser.add_argument("--ratio", type=float, default=0.10)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--lengths", default="8192,32768")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of every packer; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"fusionforge compiled kernels, first call in this process: {first_call_seconds():.2f} s (not in items/s)")
    for seq_len in (int(x) for x in args.lengths.split(",")):
        rng = np.random.default_rng(args.seed)
        n_text = int(args.tokens / 1650)
        records = make_records(rng, seq_len, n_text, int(n_text * 0.25))
        kept = draw_to_ratio(rng, records, args.ratio)
        anchor_items = items_for_anchors(kept, seq_len)
        by_kind, n_items = items_for_fusionforge(kept)
        packers = {
            "fusionforge": partial(run_fusionforge, by_kind, n_items, seq_len, args.ratio, args.window),
            "(a) energon example": partial(run_anchor, energon_example, anchor_items, seq_len),
            "(b) nemo greedy_knapsack": partial(run_anchor, greedy_knapsack, anchor_items, seq_len),
            "(c) offline FFD": partial(run_anchor, first_fit_decreasing, anchor_items, seq_len),
        }
        results, best = {}, {}
        for _ in range(args.repeat):  # interleaved, so a burst of load on the machine hits every packer alike
            for name, run in packers.items():
                results[name] = run()
                best[name] = min(best.get(name, math.inf), results[name][1])
        total = sum(sum(p.length for p in parts) for _, parts in kept)
        vision = sum(sum(p.vision for p in parts) for _, parts in kept)
        print(
            f"\nL={seq_len}: {len(kept):,} documents drawn ({n_items:,} pieces), {total / 1e6:.1f}M tokens, item "
            f"vision share {vision / total:.2%}, windows of {args.window} sequences "
            f"({len(results['fusionforge'][0]) / args.window:.1f} windows), target r={args.ratio:.0%}; "
            f"items/s: CPU time, fastest of {args.repeat}"
        )
        header = (
            f"{'packer':26} {'seqs':>7} {'padding':>8} {'global':>7} {'win err':>8} {'slide err':>9} "
            f"{'p5':>6} {'mean':>6} {'p95':>6} {'zero-vis':>8} {'+-5pp':>6} {'split':>6} {'items/s':>10} "
            f"{'vs knap':>7}"
        )
        print(header)
        knap_rate = results["(b) nemo greedy_knapsack"][2] / best["(b) nemo greedy_knapsack"]
        for name, (seqs, _, n, split, left) in results.items():
            m = metrics(seqs, seq_len, args.ratio, args.window)
            rate = n / best[name]
            print(
                f"{name:26} {m['sequences']:7,} {m['padding']:8.3%} {m['global']:7.2%} {m['window_err']:8.2%} "
                f"{m['sliding_err']:9.2%} {m['p5']:6.1%} {m['mean']:6.1%} {m['p95']:6.1%} {m['zero']:8.1%} "
                f"{m['band']:6.1%} {split:6,} {rate:10,.0f} {rate / knap_rate:7.2f}"
                + (f"  ({left} items left as surplus)" if left else "")
            )


if __name__ == "__main__":
    main()
