"""Semantic dedup's maths and its embedding stage, on vectors and models made here."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from semantic_fixtures import build_static_model, paraphrase_corpus

from fusionforge.filters.dedup.embed import DedupeEmbed, column
from fusionforge.filters.dedup.embedders import StaticTextEmbedder, padded_batches, unit_rows
from fusionforge.filters.dedup.semantic import (
    cluster_pairs,
    nearest_centroid,
    sample_rows,
    train_centroids,
)
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.registry import get


def _all_pairs(x: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    s = x @ x.T
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(s, 1) >= threshold))}


def _blobs(seed: int, centers: int = 8, per: int = 50, dim: int = 16, spread: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = unit_rows(rng.standard_normal((centers, dim)))
    return unit_rows(np.repeat(middle, per, axis=0) + spread * rng.standard_normal((centers * per, dim)))


def test_one_cluster_finds_exactly_the_all_pairs_set():
    x = _blobs(0)
    items = np.arange(len(x), dtype=np.int64) * 1024
    a, b, s = cluster_pairs(x, items, np.zeros(len(x), np.int32), 0.99)
    found = {(int(i) // 1024, int(j) // 1024) for i, j in zip(a, b)}
    assert found == _all_pairs(x, 0.99) and found
    np.testing.assert_allclose(s, np.sum(x[a // 1024] * x[b // 1024], axis=1), rtol=1e-6)
    assert (a < b).all()


def test_pairs_never_cross_clusters_and_blocks_change_nothing(monkeypatch):
    from fusionforge.filters.dedup import semantic

    x = _blobs(1)
    items = np.arange(len(x), dtype=np.int64)
    clusters = np.arange(len(x)) % 2  # splits every blob in two
    a, b, _ = cluster_pairs(x, items, clusters, 0.9)
    assert len(a) and (clusters[a] == clusters[b]).all()
    monkeypatch.setattr(semantic, "CHUNK_ROWS", 7)  # many blocks per cluster
    a2, b2, _ = cluster_pairs(x, items, clusters, 0.9)
    assert {*zip(a, b)} == {*zip(a2, b2)}


def test_kmeans_on_a_sample_keeps_each_blob_in_one_cluster():
    x = _blobs(2, spread=0.02)
    sample = x[sample_rows(len(x), 120, seed=0)]
    centroids = train_centroids(sample, 4, 20, seed=0)  # fewer clusters than blobs, as in use (k << items)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)
    assigned = nearest_centroid(x, centroids)[:, 0]
    per_blob = assigned.reshape(8, 50)
    assert all(len(set(row)) == 1 for row in per_blob)  # near neighbours share their centroid
    assert len(set(per_blob[:, 0])) == 4
    again = nearest_centroid(x, train_centroids(sample, 4, 20, seed=0))[:, 0]
    assert (again == assigned).all()  # seeded: the same clusters every run


def test_sample_rows_is_bounded_seeded_and_sorted():
    rows = sample_rows(1_000_000, 1000, seed=3)
    assert len(rows) == 1000 == len(set(rows.tolist())) and (np.diff(rows) > 0).all()
    assert (rows == sample_rows(1_000_000, 1000, seed=3)).all()
    assert (sample_rows(5, 1000, seed=3) == np.arange(5)).all()


def test_padded_batches_give_every_row_the_same_floats_whatever_its_neighbours():
    calls = []

    def encode(rows):
        calls.append(len(rows))
        return np.array([[float(r)] for r in rows])

    out = padded_batches(encode, [1, 2, 3, 4, 5], 0, 4)
    assert calls == [4, 4] and out[:, 0].tolist() == [1, 2, 3, 4, 5]


def test_clip_embeddings_do_not_depend_on_the_batch_they_came_in(tiny_clip):
    from PIL import Image

    from fusionforge.filters.dedup.embedders import ClipEmbedder

    embedder = ClipEmbedder(tiny_clip["config"], tiny_clip["pt"], "cpu", 4)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(7)]
    whole = embedder.images(images)
    for start in (1, 3, 5):
        assert np.array_equal(embedder.images(images[start:]), whole[start:])


def test_the_static_model_loads_from_its_folder_and_sees_paraphrases(tmp_path):
    folder = build_static_model(tmp_path / "m2v")
    embedder = StaticTextEmbedder(str(folder))
    records, pairs, _ = paraphrase_corpus()
    text = {r["id"]: r["text"] for r in records}
    for pair in pairs:
        a, b = embedder([text[i] for i in sorted(pair)])
        assert a @ b > 0.95
    unrelated = embedder([text["t001"], text["t002"]])
    assert unrelated[0] @ unrelated[1] < 0.8
    with pytest.raises(ConfigError, match="does not exist"):
        StaticTextEmbedder(str(tmp_path / "missing"))


def test_the_stage_embeds_primary_texts_and_keeps_what_it_cannot_embed(tmp_path, make_batch, make_record):
    folder = build_static_model(tmp_path / "m2v")
    stage = get("dedupe_embed_v1")(text_model=str(folder))
    assert isinstance(stage, DedupeEmbed) and stage.stateful
    records, _, _ = paraphrase_corpus()
    batch = make_batch(
        [
            make_record("a", records[0]["text"]),
            make_record("empty", ""),
            make_record("unknown", "words the model never saw"),
        ]
    )
    out = stage(batch)
    spaces = out.column(column("space")).to_pylist()
    assert spaces == [0, None, None]
    vector = np.frombuffer(out.column(column("embedding"))[0].as_py(), "<f4")
    np.testing.assert_allclose(vector, StaticTextEmbedder(str(folder))([records[0]["text"]])[0], rtol=1e-6)
    assert out.column(column("length")).to_pylist()[0] == len(records[0]["text"])
    assert out.column("error").null_count == 3 and isinstance(out, pa.Table)


def test_a_second_probe_finds_pairs_that_kmeans_cut_apart():
    rng = np.random.default_rng(4)
    originals = unit_rows(rng.standard_normal((600, 16)))
    copies = unit_rows(originals + 0.1 * rng.standard_normal(originals.shape))
    x = np.concatenate([originals, copies])
    items = np.arange(len(x), dtype=np.int64)
    centroids = train_centroids(x, 12, 20, seed=0)
    truth = _all_pairs(x, 0.95)
    found = []
    for probes in (1, 2):
        assigned = nearest_centroid(x, centroids, probes)
        a, b, _ = cluster_pairs(np.repeat(x, probes, axis=0), np.repeat(items, probes), assigned.ravel(), 0.95)
        found.append({(int(i), int(j)) for i, j in zip(a, b)})
        assert len(found[-1]) == len(a)  # a pair met in two clusters is reported once
    assert found[0] < found[1] <= truth  # no false pair; the second probe recovers cut pairs
    assert len(found[1]) / len(truth) > len(found[0]) / len(truth) + 0.05


def test_clip_text_tower_embeds_texts_when_asked(tiny_clip, make_batch, make_record):
    from fusionforge.filters.image.clip_model import ClipScorer

    stage = DedupeEmbed(text_model="clip", clip_model=tiny_clip["config"], clip_pretrained=tiny_clip["pt"])
    out = stage(make_batch([make_record("a", "a red circle"), make_record("b", "two blue squares")]))
    vectors = np.stack([np.frombuffer(b, "<f4") for b in out.column(column("embedding")).to_pylist()])
    reference = ClipScorer(tiny_clip["config"], tiny_clip["pt"], "cpu").text_features(
        ["a red circle", "two blue squares"]
    )
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
