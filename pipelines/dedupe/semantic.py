"""``fusionforge dedupe --semantic``: SemDeDup over stored embeddings, resolved like the hash dedupe.

1. Embed (a partitioned job on the executor; ``dedupe_embed_v1`` runs as an actor pool, on GPUs when
   asked): one embedding per record's primary item, stored under ``OUT/_embeddings`` with markers, so
   a killed run resumes and a later run re-tunes from them (``--reuse-embeddings``).
2. Cluster: per space (text, image, video), spherical k-means on a seeded sample of at most
   ``kmeans_sample`` rows, then each partition's rows are assigned to their nearest centroid (a task
   per partition).
   With ``semantic_probes`` > 1 a row joins its nearest few clusters, so fewer close pairs are cut apart.
3. Pairs: clusters are dealt to shards of about ``pair_shard_items`` items (a task each); inside every
   cluster each pair at or above ``semantic_threshold`` cosine is an edge.
4. Resolve and write: the same union-find, keep policies, ``clusters.parquet`` and ``dedupe_apply_v1``
   as the hash dedupe; a dropped copy's reason is ``dedupe:semantic_dup_of:<kept id>`` (or
   ``exact_dup_of`` when its text or decoded pixels are byte-identical to the kept copy's).

Every task computes on shapes fixed by the data (not by the executor), so the in-process executor
and Ray write byte-identical outputs.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fusionforge.filters.dedup.embed import DedupeEmbed
from fusionforge.filters.dedup.semantic import (
    cluster_pairs,
    nearest_centroid,
    sample_rows,
    train_centroids,
    unique_pairs,
)
from fusionforge.filters.dedup.union_find import connected_components
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.lifecycle import (
    DEDUPE_EMBED,
    DEDUPE_GLOBAL,
    Markers,
    finished_report,
    prepare_output,
    run_pending,
)
from fusionforge.pipelines.core.progress import Progress, phase, quiet
from fusionforge.pipelines.core.ray_env import TASK_RETRIES
from fusionforge.pipelines.core.stage import Resources, StageSpec
from fusionforge.pipelines.dedupe.clusters import finish_resolution, keep_one_per_cluster, write_results
from fusionforge.pipelines.dedupe.config import DedupeConfig
from fusionforge.pipelines.dedupe.embedding_store import (
    EMBED_DIR,
    EmbeddingReader,
    read_meta,
    reusable_embeddings,
    take_embeddings,
    write_embeddings,
    write_meta,
)
from fusionforge.pipelines.dedupe.run import STEP, peak_rss_mb, score_columns, write_survivors
from fusionforge.pipelines.dedupe.store import SPACES, STORE_DIR, file_path, save_npy
from fusionforge.pipelines.transform import ManifestSource, transform_fingerprint
from fusionforge.pipelines.writers.manifest import MANIFEST

SEMANTIC = "semantic"  # the duplicate label: drop reason dedupe:semantic_dup_of:<id>
ITEMS_PER_CLUSTER = 1000  # the default k: one cluster per this many items


def run_semantic_dedupe(cfg: DedupeConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Run (or finish) a semantic dedupe; return the report, also written to ``report.json``."""
    started = time.monotonic()
    score = score_columns(cfg)
    source = ManifestSource(cfg.input, columns=[S.ID, S.SOURCE, S.MODALITY, S.TEXT, S.MEDIA, S.ERROR])
    run, choice = cfg.run.choose(STEP, source.planned_bytes)
    cfg = replace(cfg, run=run)
    out = Path(cfg.output)
    expected = embedding_meta(cfg, source)
    reused = None if cfg.reuse_embeddings is None else reusable_embeddings(cfg.reuse_embeddings, expected)
    if prepare_output(out, transform_fingerprint(cfg.transform(), cfg.settings()), cfg.run.resume, (STORE_DIR,)):
        return finished_report(out)
    partitions = source.partitions()
    starts = tuple(source.row_range(p)[0] for p in partitions)
    global_done = Markers(str(out), DEDUPE_GLOBAL)
    summary = global_done.read()
    if summary is None:
        summary = _global_phase(cfg, source, starts, expected, reused, score, progress)
        global_done.mark(summary)
    return write_survivors(cfg, out / STORE_DIR, summary, started, progress, choice)


def embedding_meta(cfg: DedupeConfig, source: ManifestSource) -> dict[str, Any]:
    """What the stored embeddings depend on: the input (its manifest's size and partitions) and the models."""
    manifest = Path(cfg.input) / MANIFEST
    params = {k: v for k, v in cfg.embed_params().items() if k not in ("strict", "drop_inputs", "timeout_s")}
    return {
        "input_rows": pq.ParquetFile(manifest).metadata.num_rows,
        "input_partitions": [list(source.row_range(p)) for p in source.partitions()],
        "stage": DedupeEmbed.name,
        **params,
    }


def _global_phase(cfg, source, starts, expected, reused: Path | None, score, progress: Progress) -> dict[str, Any]:
    out = Path(cfg.output)
    partitions = source.partitions()
    root, work = out / EMBED_DIR, out / STORE_DIR
    timings: dict[str, float] = {}
    clock = time.monotonic()
    phase(progress, "embed")
    executor = cfg.run.make_executor()
    if reused is not None:
        take_embeddings(reused, root)
    elif read_meta(root) != expected:
        resources = Resources(num_gpus=cfg.embed_gpus, batch_size=DedupeEmbed.resources.batch_size)
        stage = StageSpec(DedupeEmbed, cfg.embed_params(), resources if cfg.embed_gpus else None)
        writer = partial(write_embeddings, str(root), starts)
        run_pending(Markers(str(out), DEDUPE_EMBED), source, [stage], writer, lambda: executor, progress)
        write_meta(root, expected)
    timings["embed"] = round(time.monotonic() - clock, 3)
    clock = time.monotonic()
    phase(progress, "cluster")
    reader = EmbeddingReader(root, starts)
    counts = {space: [_count(reader, space, p) for p in partitions] for space in SPACES}
    run_task = _ray_runner(executor.ray) if cfg.run.executor == "ray" else _local
    clusters_per_space = {}
    for space, per_partition in counts.items():
        total = sum(per_partition)
        if not total:
            continue
        k = cfg.semantic_clusters or max(1, round(total / ITEMS_PER_CLUSTER))
        sample = _sample(reader, space, partitions, per_partition, cfg.kmeans_sample, cfg.run.seed)
        centroids = train_centroids(sample, k, cfg.kmeans_iterations, cfg.run.seed)
        save_npy(file_path(work, f"centroids-{SPACES[space]}", 0, "npy"), centroids)
        clusters_per_space[space] = len(centroids)
        run_task(
            assign_partition,
            [
                (str(root), starts, str(work), space, p, cfg.semantic_probes)
                for p, n in zip(partitions, per_partition)
                if n
            ],
        )
    timings["cluster"] = round(time.monotonic() - clock, 3)
    clock = time.monotonic()
    phase(progress, "pairs")
    jobs = []
    for space, k in clusters_per_space.items():
        shards = max(1, min(k, math.ceil(sum(counts[space]) / cfg.pair_shard_items)))
        jobs += [
            (str(root), starts, str(work), space, shard, shards, cfg.semantic_threshold) for shard in range(shards)
        ]
    edges = _sorted_edges(run_task(shard_pairs, jobs))
    timings["pairs"] = round(time.monotonic() - clock, 3)
    clock = time.monotonic()
    cluster_table, decisions, stats = resolve_semantic(
        edges, reader, partitions, cfg.keep, Path(cfg.input) / MANIFEST, score
    )
    write_results(out, work, cluster_table, decisions)
    timings["resolve"] = round(time.monotonic() - clock, 3)
    return {
        "method": SEMANTIC,
        "threshold": cfg.semantic_threshold,
        "embeddings": {"folder": EMBED_DIR, "reused_from": cfg.reuse_embeddings, **_models(cfg)},
        "kmeans": {SPACES[s]: k for s, k in clusters_per_space.items()},
        "items": {SPACES[s]: sum(c) for s, c in counts.items()},
        "failed_items": stats["failed"],
        "edges": len(edges[0]),
        **stats,
        "clusters_file": "clusters.parquet",
        "seconds": timings,
        "driver_peak_rss_mb": peak_rss_mb(),
    }


def _models(cfg: DedupeConfig) -> dict[str, Any]:
    kinds = cfg.semantic_kinds()
    clip = (
        {"clip_model": cfg.clip_model, "clip_pretrained": cfg.clip_pretrained}
        if kinds["images"] or kinds["videos"]
        else {}
    )
    return {"text_model": cfg.text_model if kinds["text"] else None, **clip}


def _has_items(reader: EmbeddingReader, partition: int) -> bool:
    return file_path(reader.root, "items", partition, "parquet").exists()


def _count(reader: EmbeddingReader, space: int, partition: int) -> int:
    if not _has_items(reader, partition):
        return 0
    return int(pc.sum(pc.equal(reader.items(partition, ["space"]).column("space"), space)).as_py() or 0)


def _sample(reader, space, partitions, per_partition, wanted, seed) -> np.ndarray:
    """A seeded uniform sample of at most ``wanted`` rows of ``space``, read partition by partition."""
    chosen = sample_rows(sum(per_partition), wanted, seed)
    offsets = np.r_[0, np.cumsum(per_partition)]
    parts = []
    for p, start, stop in zip(partitions, offsets[:-1], offsets[1:]):
        local = chosen[(chosen >= start) & (chosen < stop)] - start
        if len(local):
            parts.append(np.asarray(reader.matrix(space, p)[local], np.float32))
    return np.concatenate(parts)


def assign_partition(root: str, starts: tuple[int, ...], work: str, space: int, partition: int, probes: int) -> None:
    """The ``probes`` nearest centroids of each of one partition's rows of ``space``, stored beside the centroids."""
    reader = EmbeddingReader(root, starts)
    centroids = np.load(file_path(Path(work), f"centroids-{SPACES[space]}", 0, "npy"))
    assigned = nearest_centroid(reader.matrix(space, partition), centroids, probes)
    save_npy(file_path(Path(work), f"assign-{SPACES[space]}", partition, "npy"), assigned)


def shard_pairs(
    root: str, starts: tuple[int, ...], work: str, space: int, shard: int, shards: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges inside the clusters ``c`` of ``space`` with ``c % shards == shard``: gathers only their rows."""
    reader = EmbeddingReader(root, starts)
    vectors, items, clusters = [], [], []
    for partition in range(len(starts)):
        path = file_path(Path(work), f"assign-{SPACES[space]}", partition, "npy")
        if not path.exists():
            continue
        assigned = np.load(path)
        own_items = reader.space_items(space, partition)
        for probe in range(assigned.shape[1]):
            mine = np.flatnonzero(assigned[:, probe] % shards == shard)
            if len(mine):
                vectors.append(np.asarray(reader.matrix(space, partition)[mine], np.float32))
                items.append(own_items[mine])
                clusters.append(assigned[mine, probe])
    if not vectors:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return cluster_pairs(np.concatenate(vectors), np.concatenate(items), np.concatenate(clusters), threshold)


def _local(fn, jobs: list[tuple]) -> list:
    return [fn(*job) for job in jobs]


def _ray_runner(ray):
    def run(fn, jobs: list[tuple]) -> list:
        remote = ray.remote(max_retries=TASK_RETRIES)(fn)
        return ray.get([remote.remote(*job) for job in jobs])

    return run


def _sorted_edges(results: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not results:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return unique_pairs(*(np.concatenate([r[i] for r in results]) for i in range(3)))


def resolve_semantic(
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    reader: EmbeddingReader,
    partitions: list[int],
    keep: str,
    manifest: Path,
    score: list[str],
) -> tuple[pa.Table, dict[int, pa.Table], dict[str, Any]]:
    """Clusters, decisions by partition and stats from the edges (the hash dedupe's union-find and keep policy)."""
    nodes, roots = connected_components(edges[0], edges[1])
    m = _members(reader, nodes, partitions, manifest, score)
    clusters, decisions, stats, pending = keep_one_per_cluster(roots, m, keep, SEMANTIC)
    for space in SPACES:
        mine = [(c, i, k) for c, i, k in pending if m["space"][i] == space]
        if mine:
            own = reader.vectors(space, np.array([m["item"][i] for _, i, _ in mine]))
            kept = reader.vectors(space, np.array([m["item"][k] for _, _, k in mine]))
            for (c, _, _), value in zip(mine, np.sum(own * kept, axis=1)):
                clusters[c]["similarity"] = round(float(value), 6)
    return finish_resolution(clusters, decisions, stats, m["failed"], reader.locate)


def _members(
    reader: EmbeddingReader, nodes: np.ndarray, partitions: list[int], manifest: Path, score: list[str]
) -> dict[str, Any]:
    """The attributes ``keep_one_per_cluster`` reads, for ``nodes`` (sorted); plus the failed records."""
    parts, failed = [], []
    for p in partitions:
        if not _has_items(reader, p):
            continue
        table = reader.items(p)
        parts.append(table.filter(pc.is_in(table.column("item"), pa.array(nodes, pa.int64()))))
        failed.append(table.filter(pc.is_valid(table.column("error"))).select(["row", "error"]))
    members = pa.concat_tables(parts).sort_by("item") if parts else None
    n = 0 if members is None else members.num_rows
    cols = {c: members.column(c).to_numpy(zero_copy_only=False) for c in members.column_names} if n else {}
    cols["primary"] = np.ones(n, bool)
    cols["media_index"] = np.full(n, None, object)
    cols["score"] = _scores(manifest, cols.get("row", np.empty(0, np.int64)), score)
    cols["failed"] = pa.concat_tables(failed) if failed else None
    return cols


def _scores(manifest: Path, rows: np.ndarray, score: list[str]) -> np.ndarray:
    """The keep policy's score (``best:<column>``) of each of ``rows`` (sorted), read from the input manifest
    one row group at a time (scores can change between runs that reuse the embeddings, so they are not stored)."""
    out = np.full(len(rows), np.nan)
    if not score or not len(rows):
        return out
    parquet = pq.ParquetFile(manifest)
    offset = 0
    for group in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        inside = np.flatnonzero((rows >= offset) & (rows < offset + size))
        if len(inside):
            column = parquet.read_row_group(group, columns=score).column(0).cast(pa.float64()).fill_null(np.nan)
            out[inside] = column.to_numpy()[rows[inside] - offset]
        offset += size
    return out
