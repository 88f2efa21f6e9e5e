"""SemDeDup's search: spherical k-means on a bounded sample, then exact cosine pairs inside each cluster.

SemDeDup (Abbas et al., 2023) clusters the embeddings with k-means and compares items only inside
their cluster: near-duplicates sit close together, so they almost always share the nearest centroid,
and the all-pairs cost falls from n^2 to about n^2 / k. The centroids are trained on a sample of at
most ``sample`` rows, so the memory of training does not grow with the corpus; every item is then
assigned to its nearest centroid in chunks. Inside a cluster every pair's cosine is computed exactly
(a block of rows against the cluster at a time), so a reported pair is verified, not estimated.

Every shape here depends on the data only (cluster sizes, chunk sizes), never on how the work was
split, so a Ray worker and this process compute the same floats.
"""

from __future__ import annotations

import numpy as np

from fusionforge.pipelines.core.errors import MissingDependency

CHUNK_ROWS = 4096  # rows of one centroid-assignment or pair-search block


def sample_rows(total: int, wanted: int, seed: int) -> np.ndarray:
    """Sorted positions of a uniform sample of ``min(total, wanted)`` rows out of ``total``."""
    if total <= wanted:
        return np.arange(total, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(total, size=wanted, replace=False)).astype(np.int64)


def train_centroids(sample: np.ndarray, clusters: int, iterations: int, seed: int) -> np.ndarray:
    """Unit-norm centroids of spherical k-means (faiss) over ``sample``; at most one per sample row."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependency("faiss", "semantic") from exc
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    k = max(1, min(clusters, len(sample)))
    if k == 1:
        centroid = sample.mean(axis=0, keepdims=True)
        return centroid / max(float(np.linalg.norm(centroid)), 1e-12)
    kmeans = faiss.Kmeans(
        sample.shape[1],
        k,
        niter=iterations,
        seed=seed,
        spherical=True,
        verbose=False,
        max_points_per_centroid=max(256, -(-len(sample) // k)),  # train on the whole (bounded) sample
        min_points_per_centroid=1,
    )
    kmeans.train(sample)
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray, probes: int = 1) -> np.ndarray:
    """``(rows, probes)``: each row's ``probes`` most similar centroids, best first (ties: the lower index).

    With ``probes`` > 1 a row joins several clusters (as an IVF index probes several lists), so a pair
    that k-means cut apart is still compared where both rows meet; the cost is the larger clusters.
    """
    probes = min(probes, len(centroids))
    out = np.empty((len(vectors), probes), np.int32)
    for start in range(0, len(vectors), CHUNK_ROWS):
        similarity = np.asarray(vectors[start : start + CHUNK_ROWS], np.float32) @ centroids.T
        out[start : start + len(similarity)] = np.argsort(-similarity, axis=1, kind="stable")[:, :probes]
    return out


def cluster_pairs(
    vectors: np.ndarray, items: np.ndarray, clusters: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, cosine)``: every pair of rows in the same cluster with cosine >= ``threshold``; ``a < b`` (items).

    ``vectors`` are unit-norm; an item may appear in several clusters (probes), then a pair found in
    more than one is reported once. Memory: one cluster's rows plus a ``CHUNK_ROWS`` x cluster block.
    """
    order = np.lexsort((items, clusters))
    vectors, items, clusters = vectors[order], items[order], clusters[order]
    bounds = np.flatnonzero(np.r_[True, clusters[1:] != clusters[:-1], True])
    found_a, found_b, found_s = [], [], []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        if stop - start < 2:
            continue
        members = np.asarray(vectors[start:stop], np.float32)
        for row in range(0, len(members) - 1, CHUNK_ROWS):
            block = members[row : row + CHUNK_ROWS] @ members[row:].T  # only pairs (i, j >= i)
            i, j = np.nonzero(np.triu(block, k=1) >= threshold)
            found_a.append(items[start + row + i])
            found_b.append(items[start + row + j])
            found_s.append(block[i, j])
    if not found_a:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return unique_pairs(np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s))


def unique_pairs(a: np.ndarray, b: np.ndarray, cosine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs sorted by ``(a, b)``, each once (the first found keeps its cosine)."""
    order = np.lexsort((b, a))
    a, b, cosine = a[order], b[order], cosine[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])] if len(a) else np.empty(0, bool)
    return a[first].astype(np.int64), b[first].astype(np.int64), cosine[first].astype(np.float32)
