"""Property tests of the packer over many seeded random item mixes (every property could fail)."""

import random

import numpy as np
import pyarrow as pa
import pytest

from fusionforge.mixers.packing import planner
from fusionforge.mixers.packing.counting import MEDIA_SPAN
from fusionforge.mixers.packing.items import ItemBatch, Stream
from fusionforge.mixers.packing.kernels import order_sequences
from fusionforge.mixers.packing.packer import LONG, TEXT, VISION, pack_window, sort_by
from fusionforge.mixers.packing.plan_table import PLAN_SCHEMA
from fusionforge.mixers.packing.planner import InlineRunner, PlanParams, RayRunner, run_windows
from fusionforge.mixers.packing.windows import WindowDrawer


def random_items(rng: random.Random, n: int, seq_len: int, vision_share: float = 0.3) -> list[tuple]:
    """``(kind, size, vision, id)`` per item."""
    items = []
    for i in range(n):
        if rng.random() < vision_share:
            vision = rng.randint(16, seq_len // 3)
            items.append((VISION, min(seq_len, vision + rng.randint(2, seq_len // 4)), vision, f"r{i}"))
        else:
            size = max(1, int(rng.lognormvariate(0, 1.2) * seq_len / 8))
            items.append((LONG if size > seq_len else TEXT, size, 0, f"r{i}"))
    return items


def batch(items: list[tuple]) -> ItemBatch:
    n = len(items)
    media = [
        [
            {
                "offset": 1,
                "media_index": 0,
                "kind": "image",
                "width": 28,
                "height": 28,
                "vision_tokens": v,
                "chunk_start": None,
                "chunk_end": None,
            }
        ]
        if k == VISION
        else []
        for k, _, v, _ in items
    ]
    meta = pa.table(
        {
            "sample_id": [i[3] for i in items],
            "source": ["s"] * n,
            "modality": ["image" if i[0] == VISION else "text" for i in items],
            "media": pa.array(media, pa.list_(MEDIA_SPAN)),
        }
    )
    return ItemBatch.build(
        meta,
        kind=[i[0] for i in items],
        size=[i[1] for i in items],
        vision=[i[2] for i in items],
        n_pieces=1,
        row=np.arange(n),
        partition=0,
    )


def make_drawer(items: list[tuple], seq_len: int, window: int, ratio: float, block: int = 97) -> WindowDrawer:
    streams = []
    for kind in (VISION, TEXT, LONG):
        mine = [i for i in items if i[0] == kind]
        streams.append(Stream(iter([batch(mine[s : s + block]) for s in range(0, len(mine), block)])))
    text = sum(i[1] for i in items if i[0] != VISION)
    return WindowDrawer(*streams, seq_len, window, ratio, text, sum(i[1] for i in items if i[0] == LONG))


def plan(items, seq_len=512, window=16, ratio=0.1, cap=None, seed=0, runner=None, lag=4):
    """Plan rows split by window, and the surplus."""
    groups: list[pa.Table] = []
    drawer = make_drawer(items, seq_len, window, ratio)
    left = run_windows(drawer, PlanParams(seq_len, window, cap, seed, lag), runner or InlineRunner(), groups.append)
    surplus = {kind: ItemBatch.concat(list(batches)) for kind, batches in left.items()}
    rows = pa.concat_tables(groups)
    ids = rows.column("window").to_numpy()
    assert (np.diff(ids) >= 0).all() and len(groups) == -(-len(np.unique(ids)) // lag)
    return [rows.filter(pa.array(ids == w)) for w in np.unique(ids)], surplus


def rows_of(tables):
    return [row for table in tables for row in table.to_pylist()]


@pytest.mark.parametrize("seed", range(12))
def test_packing_properties(seed):
    rng = random.Random(seed)
    seq_len, window = rng.choice([(256, 8), (512, 16), (1024, 32)])
    ratio = rng.choice([0.05, 0.1, 0.2, 0.3])
    items = random_items(rng, rng.randint(300, 900), seq_len, vision_share=rng.uniform(0.1, 0.5))
    tables, surplus = plan(items, seq_len, window, ratio, seed=seed)
    sequences = rows_of(tables)
    placed: dict[str, list[tuple[int, int]]] = {}
    for row in sequences:
        assert 0 < row["tokens"] <= seq_len and row["padding"] == seq_len - row["tokens"]
        assert row["cu_seqlens"][0] == 0 and row["cu_seqlens"][-1] == row["tokens"]
        assert row["cu_seqlens"] == sorted(row["cu_seqlens"]) and len(row["cu_seqlens"]) == row["items"] + 1
        assert row["vision_tokens"] == sum(s["vision_tokens"] for s in row["segments"])
        for segment, begin in zip(row["segments"], row["cu_seqlens"]):
            assert segment["offset"] == begin
            assert [m["offset"] for m in segment["media"]] == [begin + 1] * len(segment["media"])
            placed.setdefault(segment["sample_id"], []).append((segment["sample_start"], segment["length"]))
    left = ItemBatch.concat(list(surplus.values()))
    for sample_id, offset, size in zip(left.meta.column("sample_id").to_pylist(), left.offset, left.size):
        placed.setdefault(sample_id, []).append((int(offset), int(size)))
    for kind, size, _, sample_id in items:
        ranges = sorted(placed.pop(sample_id))
        if kind == VISION:  # atomic: one whole segment (or wholly surplus)
            assert ranges == [(0, size)]
        else:  # chunks reassemble to the original, each token exactly once
            position = 0
            for start, length in ranges:
                assert start == position and length > 0
                position += length
            assert position == size
    assert not placed, "segments that belong to no input item"
    # every full window is exactly B sequences, and the whole run keeps the ratio to within one item
    assert all(table.num_rows == window for table in tables[:-1])
    tokens = sum(r["tokens"] for r in sequences)
    vision = sum(r["vision_tokens"] for r in sequences)
    largest = max(i[1] for i in items if i[0] == VISION)
    assert abs(vision / tokens - ratio) <= largest / (window * seq_len)


def test_deterministic_under_a_seed_and_seed_changes_order():
    items = random_items(random.Random(3), 600, 512)
    first, _ = plan(items, seed=5)
    again, _ = plan(items, seed=5)
    other, _ = plan(items, seed=6)
    assert all(a.equals(b) for a, b in zip(first, again)) and len(first) == len(again)
    assert not all(a.equals(b) for a, b in zip(first, other))
    assert [t.num_rows for t in first] == [t.num_rows for t in other]
    whole = pa.concat_tables(first)
    assert whole.add_column(0, "sequence_id", pa.array(range(whole.num_rows), pa.int64())).schema == PLAN_SCHEMA


def test_text_documents_that_fit_are_never_cut_and_vision_is_spread():
    rng = random.Random(11)
    items = random_items(rng, 2000, 1024, vision_share=0.25)
    tables, _ = plan(items, seq_len=1024, window=32, ratio=0.1)
    sequences = rows_of(tables)
    for row in sequences:
        for segment in row["segments"]:
            if segment["split"]:
                assert segment["modality"] == "text"
    short = {i[3] for i in items if i[0] == TEXT}
    seen = [s["sample_id"] for row in sequences for s in row["segments"] if s["sample_id"] in short]
    assert len(seen) == len(set(seen))  # one segment per short document
    padding = sum(r["padding"] for r in sequences) / (len(sequences) * 1024)
    assert padding < 0.01
    zero = sum(r["vision_tokens"] == 0 for r in sequences) / len(sequences)
    assert zero < 0.5


def test_runs_of_b_sequences_at_any_offset_keep_the_ratio():
    rng = random.Random(21)
    seq_len, window, ratio = 1024, 32, 0.1
    items = random_items(rng, 6000, seq_len, vision_share=0.2)
    tables, _ = plan(items, seq_len, window, ratio)
    tokens = np.array([r["tokens"] for r in rows_of(tables)])
    vision = np.array([r["vision_tokens"] for r in rows_of(tables)])
    sums = np.lib.stride_tricks.sliding_window_view(tokens, window).sum(1)
    errors = np.abs(np.lib.stride_tricks.sliding_window_view(vision, window).sum(1) / sums - ratio)
    excess = np.abs(vision - ratio * tokens).max()
    assert len(errors) > 200
    assert errors.max() <= 3 * excess / (window * seq_len)  # a few sequences' worth, not a half window's
    shuffled = np.random.default_rng(0).permutation(len(tokens))  # what a random order gives, for contrast
    random_errors = np.abs(
        np.lib.stride_tricks.sliding_window_view(vision[shuffled], window).sum(1)
        / np.lib.stride_tricks.sliding_window_view(tokens[shuffled], window).sum(1)
        - ratio
    )
    assert errors.max() < random_errors.max()


def test_interleave_keeps_every_prefix_near_the_share():
    rng = np.random.default_rng(4)
    tokens = rng.integers(500, 1025, 300)
    vision = np.where(rng.random(300) < 0.3, rng.integers(0, 900, 300), 0)
    vision = np.minimum(vision, tokens)
    sequences = np.arange(300)
    order, ordered_tokens, _, counts, _, position = order_sequences(300, sequences, tokens, vision, np.uint64(1))
    assert sorted(order) == list(range(300)) and (ordered_tokens == tokens[order]).all()
    assert (counts == 1).all() and (position == 0).all()
    assert order_sequences(300, sequences, tokens, vision, np.uint64(2))[0].tolist() != order.tolist()  # seeded
    share = vision.sum() / tokens.sum()
    excess = vision[order] - share * tokens[order]
    assert np.abs(np.cumsum(excess)).max() <= np.abs(excess).max() * 1.0001
    assert np.abs(np.cumsum(vision - share * tokens)).max() > 2 * np.abs(excess).max()  # input order drifts far


def test_per_sequence_vision_cap_is_respected():
    items = random_items(random.Random(4), 800, 512, vision_share=0.4)
    capped = [i for i in items if i[2] <= 120 or i[0] != VISION]
    tables, _ = plan(capped, ratio=0.15, cap=150)
    assert all(row["vision_tokens"] <= 150 for row in rows_of(tables))


def test_text_goes_largest_first_to_the_tightest_room():
    # vision 70, 50, 30 leave rooms 30, 50, 70; documents 29, 48, 65 each fill the tightest room that fits
    kind = np.array([VISION] * 3 + [TEXT] * 3)
    size = np.array([70, 50, 30, 29, 48, 65])
    packed = pack_window(kind, size, np.array([70, 50, 30, 0, 0, 0]), seq_len=100, n_sequences=3)
    together = sorted(sorted(size[packed.ref[packed.seq == b]].tolist()) for b in range(3))
    assert together == [[29, 70], [30, 65], [48, 50]]
    assert not len(packed.leftovers)


def test_vision_goes_heaviest_first_to_the_lightest_sequence():
    kind = np.full(5, VISION)
    vision = np.array([10, 50, 40, 30, 20])
    packed = pack_window(kind, vision + 5, vision, seq_len=200, n_sequences=2)
    loads = sorted(int(vision[packed.ref[packed.seq == b]].sum()) for b in range(2))
    assert loads == [70, 80]  # 50 | 40, then 30 to the 40-sequence, 20 to the 50-sequence, 10 to the 70


def test_sort_by_matches_lexsort_including_huge_keys():
    rng = np.random.default_rng(2)
    refs = np.arange(500)
    a, b = rng.integers(0, 7, 500), rng.integers(-3, 3, 500)
    assert sort_by(refs, a, b).tolist() == np.lexsort((refs, b, a)).tolist()
    huge = rng.integers(0, 2**40, 500)
    assert sort_by(refs, huge, huge).tolist() == np.lexsort((refs, huge, huge)).tolist()


def test_pack_window_leftovers_and_final_window():
    kind = np.array([VISION, VISION, VISION, TEXT])
    size, vision = np.array([90, 90, 90, 50]), np.array([60, 60, 60, 0])
    fixed = pack_window(kind, size, vision, seq_len=100, n_sequences=2)
    assert len(fixed.leftovers) == 2 and fixed.n_sequences == 2
    final = pack_window(
        np.append(kind, LONG), np.append(size, 250), np.append(vision, 0), seq_len=100, n_sequences=None
    )
    assert not len(final.leftovers) and not len(final.rest_ref)
    assert final.length.sum() == 3 * 90 + 50 + 250
    per_sequence = np.bincount(final.seq, final.length)
    assert per_sequence.max() <= 100 and (per_sequence < 100).sum() <= 2


def test_final_window_is_sized_to_its_tokens():
    rng = np.random.default_rng(8)
    n = 400
    kind = np.where(rng.random(n) < 0.2, VISION, TEXT)
    size = rng.integers(20, 700, n)
    vision = np.where(kind == VISION, size // 2, 0)
    kind, size, vision = np.append(kind, [LONG] * 3), np.append(size, [3000, 2500, 4100]), np.append(vision, [0] * 3)
    packed = pack_window(kind, size, vision, seq_len=1024, n_sequences=None)
    per_sequence = np.bincount(packed.seq, packed.length, packed.n_sequences)
    assert per_sequence.sum() == size.sum() and per_sequence.max() <= 1024
    assert packed.n_sequences == -(-size.sum() // 1024)  # as few sequences as the tokens need
    assert (per_sequence < 1024).sum() == 1


def test_stream_front_drop_and_push_back():
    items = random_items(random.Random(1), 50, 512, vision_share=0)
    stream = Stream(iter([batch(items[:7]), batch(items[7:20]), batch(items[20:])]))
    first = stream.front(12)
    assert first.meta.column("sample_id").to_pylist() == [i[3] for i in items[:12]]
    stream.drop(12)
    stream.push_front(first.slice(9, 12))
    assert stream.front(5).meta.column("sample_id").to_pylist() == [i[3] for i in items[9:14]]
    stream.drop(5)
    assert ItemBatch.concat(list(stream.rest())).size.tolist() == [i[1] for i in items[14:]]
    assert stream.exhausted and not len(stream.front(3))


@pytest.mark.ray
def test_ray_and_in_process_plans_are_identical(ray_session):
    items = random_items(random.Random(9), 700, 512)
    local, local_surplus = plan(items, seed=2)
    remote, remote_surplus = plan(items, seed=2, runner=RayRunner(ray_session))
    assert len(local) == len(remote) and all(a.equals(b) for a, b in zip(local, remote))
    assert {k: v.meta.column("sample_id").to_pylist() for k, v in local_surplus.items()} == {
        k: v.meta.column("sample_id").to_pylist() for k, v in remote_surplus.items()
    }


def test_rows_are_flushed_by_items_and_the_plan_does_not_depend_on_it(monkeypatch):
    """A large window's rows are built alone (the driver holds items, not windows); the plan is the same."""
    items = random_items(random.Random(4), 700, 512)

    def groups() -> list[pa.Table]:
        sunk: list[pa.Table] = []
        run_windows(make_drawer(items, 512, 16, 0.1), PlanParams(512, 16, None, 3, 4), InlineRunner(), sunk.append)
        return sunk

    by_lag = groups()
    monkeypatch.setattr(planner, "FLUSH_ITEMS", 1)
    by_items = groups()
    windows = [np.unique(g.column("window").to_numpy()).tolist() for g in by_items]
    assert windows == [[w] for w in range(len(windows))] and len(by_lag) == -(-len(windows) // 4) < len(windows)
    assert pa.concat_tables(by_items).equals(pa.concat_tables(by_lag))
