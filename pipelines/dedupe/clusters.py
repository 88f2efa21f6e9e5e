"""From verified edges to clusters, a kept member per cluster, and per-record decisions.

Components come from union-find over the edges (only items with an edge take memory). Text is
resolved first, because an interleaved document dropped as a text duplicate takes its images with
it; those images then leave their image clusters. In an image or video cluster a member that cannot
be dropped (an image inside a kept document) is preferred as the kept copy, so stand-alone copies
of a document's image go, not the document. Among the rest the keep policy decides: the first seen
(input order), the longest (characters, pixels, seconds), or the best by a score column; ties go to
the first seen, so the choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fusionforge.filters.dedup.hamming import hamming64
from fusionforge.filters.dedup.union_find import connected_components
from fusionforge.filters.dedup.video_hash import sequence_similarity
from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.dedupe.grouping import text_similarity
from fusionforge.pipelines.dedupe.store import IMAGE, SLOTS, SPACES, TEXT, VIDEO, SketchReader, file_path

CLUSTERS = "clusters.parquet"
CLUSTER_SCHEMA = pa.schema(
    [
        ("cluster", pa.int64()),
        ("space", pa.string()),
        ("member_id", pa.string()),
        ("member_media", pa.int32()),
        ("kept_id", pa.string()),
        ("kept_media", pa.int32()),
        ("similarity", pa.float64()),
        ("duplicate", pa.string()),
        ("dropped", pa.bool_()),
    ]
)
DECISION_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("dedupe__cluster", pa.int64()),
        ("dedupe__kept_id", pa.string()),
        ("dedupe__similarity", pa.float64()),
        ("dedupe__duplicate", pa.string()),
        ("dedupe__error", pa.string()),
    ]
)
_ATTRS = ["item", "row", "space", "primary", "id", "media_index", "exact_hi", "exact_lo", "length", "score", "error"]


def member_table(reader: SketchReader, items: np.ndarray, partitions: list[int]) -> dict[str, np.ndarray]:
    """Attributes of ``items`` (sorted), read partition by partition; plus every failed primary item."""
    parts, failed = [], []
    wanted_partitions = set(reader.locate(items)[0].tolist()) if len(items) else set()
    for p in partitions:
        table = pq.read_table(file_path(reader.root, "items", p, "parquet"), columns=_ATTRS)
        if p in wanted_partitions:
            parts.append(table.filter(pc.is_in(table.column("item"), pa.array(items, pa.int64()))))
        failed.append(table.filter(pc.and_(pc.is_valid(table.column("error")), table.column("primary"))))
    members = pa.concat_tables(parts) if parts else pa.schema([]).empty_table()
    members = members.sort_by("item") if members.num_rows else members
    cols = {c: members.column(c).to_numpy(zero_copy_only=False) for c in members.column_names}
    cols["failed"] = pa.concat_tables(failed) if failed else None
    return cols


def resolve(
    edges: pa.Table, reader: SketchReader, partitions: list[int], keep: str, params: dict[str, Any]
) -> tuple[pa.Table, dict[int, pa.Table], dict[str, Any]]:
    """``(clusters, decisions by partition, stats)`` from the verified edges."""
    a, b = edges.column("a").to_numpy(), edges.column("b").to_numpy()
    nodes, roots = connected_components(a, b)
    m = member_table(reader, nodes, partitions)
    if len(nodes) and not np.array_equal(m["item"], nodes):
        raise RuntimeError("dedupe sketch files and edges disagree; rerun without --resume")
    clusters, decisions, stats, pending = keep_one_per_cluster(roots, m, keep, "near")
    _fill_similarities(clusters, pending, m, reader, params)
    return finish_resolution(clusters, decisions, stats, m["failed"], reader.locate)


def keep_one_per_cluster(
    roots: np.ndarray, m: dict[str, np.ndarray], keep: str, near: str
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]], dict[str, int], list[tuple[int, int, int]]]:
    """Cluster rows, decisions by global row, drop counts and the (cluster row, member, kept) needing a similarity.

    ``m`` holds the attributes of the components' members (sorted by item, aligned with ``roots``);
    a dropped copy whose content is not identical to the kept one is labelled ``near``.
    """
    clusters: list[dict[str, Any]] = []
    decisions: dict[int, dict[str, Any]] = {}
    dropped_rows: set[int] = set()
    stats = {f"{SPACES[s]}_{k}": 0 for s in SPACES for k in ("clusters", "exact_dropped", f"{near}_dropped")}
    pending: list[tuple[int, int, int]] = []
    for space in (TEXT, IMAGE, VIDEO):
        in_space = np.flatnonzero(m["space"] == space) if len(roots) else np.empty(0, int)
        order = in_space[np.argsort(roots[in_space], kind="stable")]
        for component in np.split(order, np.flatnonzero(np.diff(roots[order])) + 1):
            members = [i for i in component.tolist() if int(m["row"][i]) not in dropped_rows]
            if len(members) < 2:
                continue
            kept = min(members, key=lambda i: _preference(m, i, keep))
            cluster = sum(stats[f"{SPACES[s]}_clusters"] for s in SPACES)
            stats[f"{SPACES[space]}_clusters"] += 1
            for i in members:
                exact = i != kept and _same_content(m, i, kept)
                dropped = i != kept and bool(m["primary"][i])
                duplicate = None if i == kept else ("exact" if exact else near)
                clusters.append(
                    {
                        "cluster": cluster,
                        "space": SPACES[space],
                        "member_id": m["id"][i],
                        "member_media": _media(m, i),
                        "kept_id": m["id"][kept],
                        "kept_media": _media(m, kept),
                        "similarity": 1.0 if i == kept or exact else None,
                        "duplicate": duplicate,
                        "dropped": dropped,
                    }
                )
                if i != kept and not exact:
                    pending.append((len(clusters) - 1, i, kept))
                if dropped:
                    dropped_rows.add(int(m["row"][i]))
                    stats[f"{SPACES[space]}_{duplicate}_dropped"] += 1
                if m["primary"][i] and (dropped or i == kept):
                    decisions[int(m["row"][i])] = {
                        "cluster": cluster,
                        "kept_id": m["id"][kept],
                        "duplicate": duplicate,
                        "index": len(clusters) - 1,
                    }
    return clusters, decisions, stats, pending


def finish_resolution(
    clusters: list[dict[str, Any]],
    decisions: dict[int, dict[str, Any]],
    stats: dict[str, int],
    failed: pa.Table | None,
    locate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[pa.Table, dict[int, pa.Table], dict[str, Any]]:
    """The clusters table, decision tables by partition (failed primary items included) and the stats."""
    for decision in decisions.values():
        decision["similarity"] = clusters[decision.pop("index")]["similarity"]
    if failed is not None:
        for row, error in zip(failed.column("row").to_pylist(), failed.column("error").to_pylist()):
            decisions[row] = {"cluster": None, "kept_id": None, "duplicate": None, "similarity": None, "error": error}
    stats["failed"] = 0 if failed is None else failed.num_rows
    stats["clusters"] = sum(stats[f"{SPACES[s]}_clusters"] for s in SPACES)
    return pa.Table.from_pylist(clusters, schema=CLUSTER_SCHEMA), _by_partition(decisions, locate), stats


def _same_content(m: dict[str, np.ndarray], i: int, j: int) -> bool:
    return m["exact_hi"][i] == m["exact_hi"][j] and m["exact_lo"][i] == m["exact_lo"][j]


def _preference(m: dict[str, np.ndarray], i: int, keep: str) -> tuple:
    """Sort key of a cluster member (smallest is kept): undroppable first, then the policy, then input order."""
    undroppable_first = bool(m["primary"][i])
    if keep == "longest":
        policy = -float(m["length"][i])
    elif keep.startswith("best:"):
        policy = np.inf if np.isnan(m["score"][i]) else -float(m["score"][i])
    else:
        policy = 0.0
    return undroppable_first, policy, int(m["item"][i])


def _media(m: dict[str, np.ndarray], i: int) -> int | None:
    value = m["media_index"][i]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else int(value)


def _fill_similarities(
    clusters: list[dict[str, Any]],
    pending: list[tuple[int, int, int]],
    m: dict[str, np.ndarray],
    reader: SketchReader,
    params: dict[str, Any],
) -> None:
    """Similarity of each near member to its cluster's kept member (verified the same way as edges)."""
    text = [(c, i, k) for c, i, k in pending if m["space"][i] == TEXT]
    if text:
        items = np.array([[m["item"][i], m["item"][k]] for _, i, k in text], np.int64)
        similarity, _ = text_similarity(reader, items[:, 0], items[:, 1], params)
        for (c, _, _), value in zip(text, similarity):
            clusters[c]["similarity"] = float(value)
    for c, i, k in pending:
        space = m["space"][i]
        if space == IMAGE:
            own, other = reader.hashes(int(m["item"][i])), reader.hashes(int(m["item"][k]))
            distance = min(hamming64(own[0], other).min(), hamming64(own, other[0]).min())
            clusters[c]["similarity"] = 1.0 - float(distance) / 64.0
        elif space == VIDEO:
            clusters[c]["similarity"] = sequence_similarity(
                reader.hashes(int(m["item"][i])), reader.hashes(int(m["item"][k])), params["video_hamming"]
            )


def _by_partition(
    decisions: dict[int, dict[str, Any]], locate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
) -> dict[int, pa.Table]:
    if not decisions:
        return {}
    rows = np.array(sorted(decisions), np.int64)
    partitions, local = locate(rows * SLOTS)
    out = {}
    for p in np.unique(partitions):
        mask = partitions == p
        picked = [decisions[int(r)] for r in rows[mask]]
        out[int(p)] = pa.table(
            {
                "row": local[mask],
                "dedupe__cluster": [d["cluster"] for d in picked],
                "dedupe__kept_id": [d["kept_id"] for d in picked],
                "dedupe__similarity": [d["similarity"] for d in picked],
                "dedupe__duplicate": [d["duplicate"] for d in picked],
                "dedupe__error": [d.get("error") for d in picked],
            },
            schema=DECISION_SCHEMA,
        )
    return out


def write_results(out_dir: Path, root: Path, clusters: pa.Table, decisions: dict[int, pa.Table]) -> None:
    """``clusters.parquet`` next to the output, decision files in the work folder (all atomic)."""
    with atomic_path(out_dir / CLUSTERS) as tmp:
        pq.write_table(clusters, tmp)
    for partition, table in decisions.items():
        with atomic_path(file_path(root, "decisions", partition, "parquet")) as tmp:
            pq.write_table(table, tmp)
