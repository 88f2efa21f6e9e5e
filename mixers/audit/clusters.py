"""Duplicate-cluster sizes from a dedupe step's ``clusters.parquet``, exactly and in bounded memory.

A cluster's size is the number of its rows (plus one when its kept member is not listed), which
needs the rows grouped by cluster id. The kept member's own row is the one whose member id (and
media index, for the image and video items of ``fusionforge dedupe``'s file) is the kept one's.
Duplicates removed are the rows marked ``dropped`` where the file says (an image inside a kept
document stays in its cluster but is not removed), else every member but the kept one.

The file is read in ``passes`` (from its row count): pass ``p`` groups only the clusters whose id
hashes to ``p``, so one pass holds at most about ``ROWS_PER_PASS`` ids whatever the size of the
file. Small files take one pass and no hashing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from fusionforge.mixers.audit.histogram import LogHistogram
from fusionforge.pipelines.core.errors import ConfigError

ROWS_PER_PASS = 4_000_000
CLUSTER_COLUMNS = ("cluster_id", "cluster")
MEMBER_COLUMNS = ("member_id", "id")
KEPT_COLUMNS = ("kept_id", "kept")
MEMBER_MEDIA, KEPT_MEDIA, DROPPED = "member_media", "kept_media", "dropped"
SIMILARITY_COLUMNS = ("similarity", "jaccard")


@dataclass
class ClusterState:
    """Clusters per size, listed members, members removed and the similarity of the non-kept members."""

    sizes: dict[int, int] = field(default_factory=dict)
    members: int = 0
    removed: int = 0
    similarity: LogHistogram = field(default_factory=LogHistogram)

    def merge(self, other: ClusterState) -> ClusterState:
        for key, n in other.sizes.items():
            self.sizes[key] = self.sizes.get(key, 0) + n
        self.members += other.members
        self.removed += other.removed
        self.similarity.merge(other.similarity)
        return self


def is_clusters_schema(names: list[str]) -> bool:
    return _pick(names, CLUSTER_COLUMNS) is not None and _pick(names, KEPT_COLUMNS) is not None


def fold_clusters_file(path: str, rows_per_pass: int = ROWS_PER_PASS, batch_rows: int = 65536) -> ClusterState:
    """The cluster statistics of one ``clusters.parquet``."""
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    cluster, kept = _pick(names, CLUSTER_COLUMNS), _pick(names, KEPT_COLUMNS)
    member, similarity = _pick(names, MEMBER_COLUMNS), _pick(names, SIMILARITY_COLUMNS)
    if cluster is None or kept is None:
        raise ConfigError(f"{path}: a clusters file needs a cluster id and a kept id column (have {names})")
    media = (MEMBER_MEDIA, KEPT_MEDIA) if member and {MEMBER_MEDIA, KEPT_MEDIA} <= set(names) else None
    dropped = DROPPED if DROPPED in names else None
    columns = [c for c in (cluster, kept, member, similarity, dropped, *(media or ())) if c]
    passes = max(1, math.ceil(parquet.metadata.num_rows / rows_per_pass))
    state = ClusterState()
    for pass_index in range(passes):
        parts: list[pa.Table] = []
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            table = pa.Table.from_batches([batch])
            own = _kept_rows(table, kept, member, media)
            if pass_index == 0:  # row-wise figures: once, over every row
                state.members += batch.num_rows
                if dropped:
                    state.removed += pc.sum(pc.fill_null(table.column(dropped), False).cast(pa.int64())).as_py() or 0
                if similarity:
                    values = table.column(similarity).filter(pc.invert(own))
                    state.similarity.add(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False))
            if passes > 1:
                chosen = pa.array(_bucket(table.column(cluster), passes) == pass_index)
                table, own = table.filter(chosen), own.filter(chosen)
            parts.append(
                pa.table({"cluster": table.column(cluster).cast(pa.string()), "kept_listed": own.cast(pa.int64())})
            )
        _add_sizes(state, pa.concat_tables(parts) if parts else None)
    if not dropped:
        state.removed = sum((size - 1) * n for size, n in state.sizes.items())
    return state


def _kept_rows(
    table: pa.Table, kept: str, member: str | None, media: tuple[str, str] | None
) -> pa.ChunkedArray | pa.Array:
    """Whether each row is the cluster's kept member itself (same id, and same media index when given)."""
    if member is None:
        return pa.array(np.zeros(table.num_rows, bool))
    same = pc.equal(table.column(member).cast(pa.string()), table.column(kept).cast(pa.string()))
    if media:
        left, right = table.column(media[0]), table.column(media[1])
        same_media = pc.or_(pc.and_(pc.is_null(left), pc.is_null(right)), pc.fill_null(pc.equal(left, right), False))
        same = pc.and_(same, same_media)
    return pc.fill_null(same, False)


def _add_sizes(state: ClusterState, table: pa.Table | None) -> None:
    if table is None or table.num_rows == 0:
        return
    grouped = table.group_by(["cluster"]).aggregate([([], "count_all"), ("kept_listed", "max")])
    sizes = grouped.column("count_all").to_numpy() + (1 - grouped.column("kept_listed_max").to_numpy())
    values, counts = np.unique(sizes, return_counts=True)
    for size, n in zip(values.tolist(), counts.tolist()):
        state.sizes[size] = state.sizes.get(size, 0) + n


def _bucket(ids: pa.ChunkedArray, passes: int) -> np.ndarray:
    if pa.types.is_integer(ids.type):
        return np.mod(pc.fill_null(ids, 0).to_numpy(), passes)
    return np.fromiter((xxhash.xxh64_intdigest(str(v).encode()) % passes for v in ids.to_pylist()), np.int64, len(ids))


def _pick(names: list[str], candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in names), None)
