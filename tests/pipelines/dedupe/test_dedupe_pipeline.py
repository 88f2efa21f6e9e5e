import hashlib
from collections import defaultdict
from itertools import combinations

import pyarrow.parquet as pq
import pytest
from dedupe_inputs import baseline_run, local_config, precision_recall, sharded_corpus, true_pairs

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe


@pytest.fixture(scope="module")
def corpus():
    return sharded_corpus()


@pytest.fixture(scope="module")
def local_run():
    return baseline_run()


def _reasons(out):
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    return {row["id"]: row["reason"] for row in ledger}


def test_every_kind_of_duplicate_is_found_and_accounted_for(corpus, local_run):
    root, known = corpus
    out, report = local_run
    assert report["inputs"] == pq.read_metadata(root / "in" / "manifest.parquet").num_rows
    assert report["inputs"] == report["kept"] + report["dropped"] and report["failed"] == 0
    reasons = _reasons(out)
    for original, copy in known["kinds"]["exact"]:
        first, later = sorted((original, copy))
        assert reasons[f"web/d{later:04d}"] == f"dedupe:exact_dup_of:web/d{first:04d}"
    expected = {
        "forum/copy-a": "dedupe:exact_dup_of:web/d0000",
        "forum/copy-b": "dedupe:exact_dup_of:web/d0001",
        "forum/longer": "dedupe:near_dup_of:web/d0002",
        "forum/translated": None,
        "forum/own": None,
        "photos/p3_lossless.webp#0": "dedupe:exact_dup_of:photos/p3.png#0",
        "photos/p0_small.jpg#0": "dedupe:near_dup_of:photos/p0.png#0",
        "photos/p1_jpeg.jpg#0": "dedupe:near_dup_of:photos/p1.png#0",
        "photos/p2_crop.png#0": "dedupe:near_dup_of:photos/p2.png#0",
        "docs/doc-1": "dedupe:exact_dup_of:docs/doc-0",
        "photos/p5.png#0": "dedupe:exact_dup_of:docs/doc-0",  # a kept document's image wins over a lone copy
        "clips/c0_remux.mkv#0": "dedupe:exact_dup_of:clips/c0.mp4#0",
        "clips/c0_reencoded.mp4#0": "dedupe:near_dup_of:clips/c0.mp4#0",
        "clips/c1.mp4#0": None,
        "docs/doc-0": None,
        "docs/doc-2": None,
        "web/english": None,
    }
    assert {k: reasons[k] for k in expected} == expected
    assert all(reasons[f"photos/p{i}.png#0"] is None for i in (0, 1, 2, 3, 4, 6, 7))
    kept_ids = set(pq.read_table(out / "manifest.parquet", columns=[S.ID]).column(S.ID).to_pylist())
    for reason in filter(None, reasons.values()):
        assert reason.split("_dup_of:", 1)[1] in kept_ids
    assert report["dedupe"]["image_clusters"] == 5 and report["dedupe"]["video_clusters"] == 1
    image_lsh = report["dedupe"]["hamming_lsh"]["image"]
    assert (image_lsh["hash"], image_lsh["max_distance"], image_lsh["bits_per_band"], image_lsh["bands"]) == (
        "phash",
        8,
        16,
        44,
    )
    assert image_lsh["comparisons"] > 0 and image_lsh["skipped_comparisons"] == image_lsh["capped_buckets"] == 0


def test_dhash_finds_the_same_copies_with_its_own_threshold(corpus, tmp_path):
    root, _ = corpus
    report = run_dedupe(local_config(root / "in", tmp_path / "dhash", image_hash="dhash", text=False, videos=False))
    assert report["dedupe"]["hamming_lsh"]["image"]["max_distance"] == 6  # dHash's measured default
    reasons = {k: v for k, v in _reasons(tmp_path / "dhash").items() if k.startswith("photos/")}
    assert reasons == {
        "photos/p0_small.jpg#0": "dedupe:near_dup_of:photos/p0.png#0",
        "photos/p1_jpeg.jpg#0": "dedupe:near_dup_of:photos/p1.png#0",
        "photos/p2_crop.png#0": "dedupe:near_dup_of:photos/p2.png#0",
        "photos/p3_lossless.webp#0": "dedupe:exact_dup_of:photos/p3.png#0",
        "photos/p5.png#0": "dedupe:exact_dup_of:docs/doc-0",
        **{f"photos/p{i}.png#0": None for i in (0, 1, 2, 3, 4, 6, 7)},
    }


def test_clusters_file_lists_members_kept_copy_and_similarity(local_run):
    out, report = local_run
    clusters = pq.read_table(out / "clusters.parquet").to_pylist()
    by_cluster = defaultdict(list)
    for row in clusters:
        by_cluster[row["cluster"]].append(row)
    assert len(by_cluster) == report["dedupe"]["clusters"]
    for members in by_cluster.values():
        kept = [m for m in members if m["duplicate"] is None]
        assert len(kept) == 1 and kept[0]["member_id"] == kept[0]["kept_id"] and not kept[0]["dropped"]
        for member in members:
            assert member["kept_id"] == kept[0]["kept_id"]
            if member["duplicate"] == "exact":
                assert member["similarity"] == 1.0
            elif member["duplicate"] == "near":
                floor = {"text": 0.7, "image": 1 - 8 / 64, "video": 0.8}[member["space"]]
                assert floor <= member["similarity"] <= 1.0
    image_doc = [m for m in clusters if m["member_id"] == "docs/doc-0" and m["space"] == "image"]
    assert image_doc and image_doc[0]["member_media"] == 0 and not image_doc[0]["dropped"]


def test_text_pairs_match_brute_force_jaccard(corpus, local_run):
    _, known = corpus
    out, _ = local_run
    texts = known["texts"]
    index = {f"web/d{i:04d}": i for i in range(len(texts))}
    clusters = defaultdict(list)
    for row in pq.read_table(out / "clusters.parquet").to_pylist():
        if row["space"] == "text" and row["member_id"] in index:
            clusters[row["cluster"]].append(index[row["member_id"]])
    predicted = {pair for members in clusters.values() for pair in combinations(sorted(members), 2)}
    precision, recall = precision_recall(predicted, set(true_pairs(texts, 0.8)))
    assert precision >= 0.98 and recall >= 0.95, (precision, recall)


def test_output_records_carry_decisions_and_readable_media(local_run):
    out, _ = local_run
    manifest = pq.read_table(out / "manifest.parquet")
    assert {"dedupe__cluster", "dedupe__kept_id", "dedupe__similarity"} <= set(manifest.column_names)
    for row in manifest.to_pylist():
        if row["dedupe__cluster"] is not None:
            assert row["dedupe__kept_id"] == row[S.ID]
        for item in row[S.MEDIA]:
            with open(out / item["uri"], "rb") as handle:
                handle.seek(item["offset"])
                assert hashlib.sha256(handle.read(item["size"])).hexdigest() == item["sha256"]
    rejected = pq.read_table(out / "rejected")
    assert set(rejected.column("dedupe__duplicate").to_pylist()) == {"exact", "near"}
    assert not (out / "_work" / "dedupe").exists()


def test_keep_longest_and_within_source(corpus, tmp_path):
    root, _ = corpus
    run_dedupe(
        DedupeConfig(
            input=str(root / "in"),
            output=str(tmp_path / "longest"),
            run=RunSettings(executor="local"),
            keep="longest",
            within_source=True,
            images=False,
            videos=False,
        )
    )
    reasons = _reasons(tmp_path / "longest")
    assert reasons["forum/copy-a"] is None and reasons["forum/longer"] is None  # other source: not compared
    assert reasons["photos/p1_jpeg.jpg#0"] is None  # images off
    run_dedupe(
        DedupeConfig(
            input=str(root / "in"),
            output=str(tmp_path / "cross"),
            run=RunSettings(executor="local"),
            keep="longest",
            images=False,
            videos=False,
        )
    )
    reasons = _reasons(tmp_path / "cross")
    assert reasons["web/d0002"] == "dedupe:near_dup_of:forum/longer"


def test_bad_settings_fail_before_any_work(corpus, tmp_path):
    root, _ = corpus
    with pytest.raises(ConfigError, match="no numeric column 'nope'"):
        run_dedupe(DedupeConfig(input=str(root / "in"), output=str(tmp_path / "x"), keep="best:nope"))
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="text_threshold"):
        DedupeConfig(input="a", output="b", text_threshold=1.5)
    with pytest.raises(ConfigError, match="--bands and --rows"):
        DedupeConfig(input="a", output="b", bands=4)
    with pytest.raises(ConfigError, match="unknown dedupe settings"):
        DedupeConfig.from_mapping({"input": "a", "output": "b", "treshold": 0.7})
    with pytest.raises(ConfigError, match="not empty"):
        run_dedupe(DedupeConfig(input=str(root / "in"), output=str(root / "in"), run=RunSettings(executor="local")))
