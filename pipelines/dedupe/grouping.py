"""The global phase: group band rows by bucket (a shuffle), then verify candidate pairs into edges.

Band rows are spread over ``parts`` shuffle partitions by a hash of their bucket key. On Ray, one
task per band file writes its rows split by partition (a row group each) and one task per
partition reads its row groups back, so the shuffle goes through files, never through the object
store; inside a partition, rows are sorted, so the pairs do not depend on the order files are read
in. The pairs of a partition are verified in the same task, reading the signatures and hashes they
need from the memory-mapped sketch files. The in-process engine runs the same functions (split,
then reduce) in a loop and gives the same edges.
"""

from __future__ import annotations

import json
import shutil
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fusionforge.filters.dedup.hamming import hamming_matches
from fusionforge.filters.dedup.image_hash import color_distance
from fusionforge.filters.dedup.lsh import EXACT_BAND, bucket_pairs, unique_pairs
from fusionforge.filters.dedup.minhash import exact_jaccard, fmix64
from fusionforge.filters.dedup.verify import verify_text_pairs
from fusionforge.filters.dedup.video_hash import sequence_similarity
from fusionforge.pipelines.core.io import atomic_path, write_json_atomic
from fusionforge.pipelines.core.ray_env import TASK_RETRIES
from fusionforge.pipelines.core.ray_tasks import default_window, windowed
from fusionforge.pipelines.dedupe.store import IMAGE, SPACES, TEXT, VIDEO, SketchReader

PART = "part"
SPLIT_DIR = "bands-split"  # band files split by shuffle partition, under the sketch store
HAMMING_COSTS = "hamming-costs"
PAIR_SCHEMA = pa.schema(
    [("space", pa.int8()), ("a", pa.int64()), ("b", pa.int64()), ("exact", pa.bool_()), ("distance", pa.int64())]
)
EDGE_SCHEMA = pa.schema(
    [("space", pa.int8()), ("a", pa.int64()), ("b", pa.int64()), ("exact", pa.bool_()), ("similarity", pa.float64())]
)


def shuffle_parts(band_rows: int, rows_per_part: int) -> int:
    """How many shuffle partitions keep each one under ``rows_per_part`` band rows."""
    return max(1, -(-band_rows // max(1, rows_per_part)))


def add_part(batch: pa.Table, parts: int) -> pa.Table:
    """The shuffle partition of each band row (a hash of its bucket key), as a column."""
    key = batch.column("key").to_numpy()
    part = (fmix64(key ^ np.uint64(0x5BD1E995)) % np.uint64(parts)).astype(np.int32)
    return batch.append_column(PART, pa.array(part))


def reduce_part(rows: pa.Table, params: dict[str, Any]) -> pa.Table:
    """Exact edges, text candidates, image matches and video candidates of one shuffle partition.

    What the Hamming search cost (comparisons, and those the fanout cap skipped) goes to a small
    file per partition, which the driver adds up into the report.
    """
    if rows.num_rows == 0:
        return PAIR_SCHEMA.empty_table()
    part = int(rows.column(PART)[0].as_py())
    cols = {name: rows.column(name).to_numpy(zero_copy_only=False) for name in rows.column_names if name != PART}
    space, band = cols["space"], cols["band"]
    plain = (band == EXACT_BAND) | (space == TEXT)
    exact_member, exact_first, left, right = bucket_pairs(
        {k: v[plain] for k, v in cols.items()}, params["bucket_fanout"]
    )
    text_items = cols["item"][plain]
    out = [
        _pairs(_space_of(cols, exact_member), exact_member, exact_first, True, -1),
        _pairs(np.full(len(left), TEXT, np.int8), text_items[left], text_items[right], False, -1),
    ]
    costs = {}
    for media_space, distance in ((IMAGE, params["image_hamming"]), (VIDEO, params["video_hamming"])):
        media = space == media_space
        if media.any():
            found = hamming_matches({k: v[media] for k, v in cols.items()}, distance, params["hamming_fanout"])
            out.append(_pairs(np.full(len(found.a), media_space, np.int8), found.a, found.b, False, found.distance))
            costs[SPACES[media_space]] = {
                "comparisons": found.comparisons,
                "skipped_comparisons": found.skipped,
                "capped_buckets": found.capped_buckets,
                "matches": len(found.a),
            }
    write_json_atomic(Path(params["store"]) / f"{HAMMING_COSTS}-{part:06d}.json", costs)
    return pa.concat_tables(out)


def hamming_costs(root: Path) -> dict[str, dict[str, int]]:
    """The Hamming search costs of every shuffle partition, added up per space."""
    total: dict[str, dict[str, int]] = {}
    for path in sorted(Path(root).glob(f"{HAMMING_COSTS}-*.json")):
        for space, counts in json.loads(path.read_text()).items():
            into = total.setdefault(space, dict.fromkeys(counts, 0))
            for name, value in counts.items():
                into[name] += value
    return total


def _space_of(cols: dict[str, np.ndarray], items: np.ndarray) -> np.ndarray:
    """The space of each item (items carry it in every row; any row of the item will do)."""
    order = np.argsort(cols["item"], kind="stable")
    position = np.searchsorted(cols["item"][order], items)
    return cols["space"][order][position].astype(np.int8)


def _pairs(space, a, b, exact: bool, distance) -> pa.Table:
    n = len(a)
    return pa.table(
        {
            "space": pa.array(space, pa.int8()),
            "a": pa.array(a, pa.int64()),
            "b": pa.array(b, pa.int64()),
            "exact": pa.array(np.full(n, exact)),
            "distance": pa.array(np.broadcast_to(distance, n), pa.int64()),
        },
        schema=PAIR_SCHEMA,
    )


def verify_pairs(pairs: pa.Table, params: dict[str, Any]) -> pa.Table:
    """Edges from pairs: exact and image pairs as they are, text and video pairs checked against the thresholds."""
    reader = SketchReader(params["store"], tuple(params["starts"]))
    cols = {name: pairs.column(name).to_numpy(zero_copy_only=False) for name in pairs.column_names}
    keep = unique_pairs(cols["a"], cols["b"])
    space, a, b, exact, distance = (cols[c][keep] for c in ("space", "a", "b", "exact", "distance"))
    similarity = np.where(exact, 1.0, np.where(space == IMAGE, 1.0 - distance / 64.0, np.nan))
    accepted = exact | (space == IMAGE)
    if params["image_color"]:
        coloured = np.flatnonzero(~exact & (space == IMAGE))
        thumbs = reader.thumbs_of(np.r_[a[coloured], b[coloured]])
        for i in coloured:
            accepted[i] = color_distance(thumbs[int(a[i])], thumbs[int(b[i])]) <= params["image_color"]
    text = np.flatnonzero(~exact & (space == TEXT))
    if len(text):
        similarity[text], accepted[text] = text_similarity(reader, a[text], b[text], params)
    for i in np.flatnonzero(~exact & (space == VIDEO)):
        similarity[i] = sequence_similarity(reader.hashes(a[i]), reader.hashes(b[i]), params["video_hamming"])
        accepted[i] = similarity[i] >= params["video_match"]
    take = pa.array(np.flatnonzero(accepted))
    table = pa.table({"space": space, "a": a, "b": b, "exact": exact, "similarity": similarity}, schema=EDGE_SCHEMA)
    return table.take(take)


def text_similarity(
    reader: SketchReader, a: np.ndarray, b: np.ndarray, params: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(similarity, accepted) of text pairs: the signature estimate, exact near the threshold; all kept unverified."""
    sig_a, sig_b = reader.signatures(a), reader.signatures(b)
    if not params["verify"]:
        return np.mean(sig_a == sig_b, axis=1), np.ones(len(a), bool)

    def exact(positions: np.ndarray) -> np.ndarray:
        return np.array([exact_jaccard(reader.shingle_set(a[p]), reader.shingle_set(b[p])) for p in positions])

    return verify_text_pairs(
        sig_a,
        sig_b,
        params["text_threshold"],
        params["recheck_margin"],
        exact if params["recheck_margin"] > 0 else None,
    )


def verified_edges(ray: Any | None, band_files: list[str], parts: int, params: dict[str, Any]) -> pa.Table:
    """The global phase's edges, on Ray when ``ray`` is given, else in this process; the split band
    files (a second copy of every band row) are removed once the edges are in."""
    if ray is not None:
        edges = edges_on_ray(ray, band_files, parts, params)
    else:
        edges = edges_in_process(band_files, parts, params)
    shutil.rmtree(Path(params["store"]) / SPLIT_DIR, ignore_errors=True)
    return edges


def edges_in_process(band_files: list[str], parts: int, params: dict[str, Any]) -> pa.Table:
    """The global phase in this process: the same split files, reduce and verification as on Ray, in a loop.

    Each band file is read once and split by shuffle partition; then one partition at a time is
    gathered from its row group of every split file, so memory stays bounded by
    ``rows_per_shuffle_partition`` as on Ray.
    """
    groups = {into: split_band_file(path, into, parts) for path, into in split_targets(band_files, params)}
    return collect_edges([edges_of_part(part, pieces, params) for part, pieces in part_pieces(groups, parts)])


def edges_on_ray(ray: Any, band_files: list[str], parts: int, params: dict[str, Any]) -> pa.Table:
    """The global phase on plain Ray tasks, shuffling through files rather than the object store.

    Map: one task per band file writes its rows sorted by shuffle partition, one row group per
    partition, and returns which row group holds which partition. Reduce: one task per shuffle
    partition reads its row group of every split file, reduces and verifies, and returns the edges
    (few). Both run at most ``default_window`` tasks at once, so neither the driver nor the object
    store holds more than a window's results, whatever the corpus.
    """
    window = default_window(ray)
    split = ray.remote(split_band_file).options(max_retries=TASK_RETRIES)
    groups: dict[str, dict[int, int]] = {}
    todo = deque(split_targets(band_files, params))
    for (_, into), ref in windowed(ray, lambda job: split.remote(*job, parts), todo, window):
        groups[into] = ray.get(ref)
    reduce = ray.remote(edges_of_part).options(max_retries=TASK_RETRIES)
    parts_todo = deque(part_pieces(groups, parts))
    edges = [ray.get(ref) for _, ref in windowed(ray, lambda job: reduce.remote(*job, params), parts_todo, window)]
    return collect_edges(edges)


def split_targets(band_files: list[str], params: dict[str, Any]) -> list[tuple[str, str]]:
    """``(band file, its split file)`` for each band file; split files go under the sketch store."""
    split_dir = Path(params["store"]) / SPLIT_DIR
    split_dir.mkdir(parents=True, exist_ok=True)
    return [(path, str(split_dir / Path(path).name)) for path in band_files]


def part_pieces(groups: dict[str, dict[int, int]], parts: int) -> list[tuple[int, list[tuple[str, int]]]]:
    """For each shuffle partition, ``(split file, row group)`` of every split file that has rows of it."""
    return [
        (part, [(path, row_groups[part]) for path, row_groups in groups.items() if part in row_groups])
        for part in range(parts)
    ]


def split_band_file(path: str, into: str, parts: int) -> dict[int, int]:
    """Write ``path``'s band rows to ``into`` sorted by shuffle partition, one row group per partition
    that has rows; return ``{partition: row group}``."""
    rows = add_part(pq.read_table(path), parts)
    rows = rows.take(pc.sort_indices(rows, [(PART, "ascending")]))
    part = rows.column(PART).to_numpy()
    starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]]) if len(part) else np.empty(0, np.int64)
    ends = np.r_[starts[1:], len(part)]
    with atomic_path(Path(into)) as tmp, pq.ParquetWriter(tmp, rows.schema) as writer:
        for start, end in zip(starts, ends):
            writer.write_table(rows.slice(int(start), int(end - start)), row_group_size=int(end - start))
    return {int(part[start]): group for group, start in enumerate(starts)}


def edges_of_part(part: int, pieces: list[tuple[str, int]], params: dict[str, Any]) -> pa.Table:
    """The verified edges of one shuffle partition, from its row group of each split band file."""
    tables = [pq.ParquetFile(path).read_row_group(group) for path, group in pieces]
    if not tables:
        return EDGE_SCHEMA.empty_table()
    return verify_pairs(reduce_part(pa.concat_tables(tables), params), params)


def collect_edges(tables: list[pa.Table]) -> pa.Table:
    """One row per pair (a pair found in several bands or partitions counts once), sorted."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return EDGE_SCHEMA.empty_table()
    edges = pa.concat_tables(tables)
    edges = edges.take(
        pc.sort_indices(
            edges, [("a", "ascending"), ("b", "ascending"), ("exact", "descending"), ("similarity", "descending")]
        )
    )
    a, b = edges.column("a").to_numpy(), edges.column("b").to_numpy()
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])] if len(a) else np.empty(0, bool)
    return edges.filter(pa.array(first))
