"""``dedupe --semantic`` end to end on a corpus made here: paraphrases found, distinct items kept, threshold
respected, embeddings reused without a model, and Ray writing what the in-process executor writes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from dedupe_inputs import clip, encoded, picture, transcode
from test_dedupe_resume_and_ray import _same_output

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "filters" / "dedup"))

from semantic_fixtures import build_static_model, paraphrase_corpus  # noqa: E402

from fusionforge.filters.dedup.embed import DedupeEmbed  # noqa: E402
from fusionforge.filters.dedup.embedders import StaticTextEmbedder  # noqa: E402
from fusionforge.pipelines.core import schema as S  # noqa: E402
from fusionforge.pipelines.core.errors import ConfigError  # noqa: E402
from fusionforge.pipelines.core.settings import RunSettings  # noqa: E402
from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe  # noqa: E402

pytestmark = pytest.mark.slow
# Random CLIP weights put every picture near every other (cosine 0.92-0.99). Re-encoded and resized copies
# (the same pixels on the patch grid) sit above 0.998; a crop shifts the grid and needs trained weights.
IMAGE_THRESHOLD = 0.998


def corpus(root: Path) -> dict:
    """Texts with paraphrases, pictures with re-encoded copies, and videos, sharded; plus what is known."""
    raw = root / "raw"
    raw.mkdir(parents=True)
    records, pairs, halves = paraphrase_corpus()
    (raw / "web.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    photos = raw / "photos"
    photos.mkdir()
    for i in range(5):
        (photos / f"p{i}.png").write_bytes(encoded(picture(i), "PNG"))
    (photos / "p0_jpeg.jpg").write_bytes(encoded(picture(0), "JPEG", quality=70))
    (photos / "p1_small.png").write_bytes(encoded(picture(1).resize((128, 128)), "PNG"))
    clips = raw / "clips"
    clips.mkdir()
    original = clip(clips / "c0.mp4", "testsrc", seconds=3)
    transcode(original, clips / "c0_reencoded.mp4", "-c:v", "libx264", "-crf", "30", "-vf", "scale=240:180")
    clip(clips / "c1.mp4", "smptebars", seconds=3)
    from fusionforge.pipelines.shard import ShardConfig, run_shard

    inputs = {"web": raw / "web.jsonl", "photos": photos, "clips": clips}
    run_shard(
        ShardConfig(
            inputs=tuple(f"{k}={v}" for k, v in inputs.items()),
            output=str(root / "in"),
            shard_count=7,
            run=RunSettings(executor="local"),
        )
    )
    model = build_static_model(root / "model2vec")
    return {"in": root / "in", "model": str(model), "pairs": pairs, "halves": halves, "records": records}


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    return corpus(tmp_path_factory.mktemp("semantic"))


def config(known, out: Path, tiny_clip=None, **overrides) -> DedupeConfig:
    clip_args = {"clip_model": tiny_clip["config"], "clip_pretrained": tiny_clip["pt"]} if tiny_clip else {}
    # three text clusters, so the pair search runs in several; None (one per 1,000 items) puts the few
    # images and videos in one cluster each
    settings = {"text_model": known["model"], "semantic_clusters": 3, "run": RunSettings(executor="local")}
    return DedupeConfig(input=str(known["in"]), output=str(out), semantic=True, **clip_args, **settings | overrides)


def _reasons(out: Path) -> dict[str, str | None]:
    return {r["id"]: r["reason"] for r in pq.read_table(out / "ledger.parquet").to_pylist()}


@pytest.fixture(scope="module")
def text_run(known, tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "out"
    return out, run_dedupe(config(known, out))


def test_paraphrases_are_dropped_and_distinct_texts_kept(known, text_run):
    out, report = text_run
    reasons = _reasons(out)
    assert report["inputs"] == report["kept"] + report["dropped"] + report["failed"] == len(reasons)
    for pair in known["pairs"]:
        original, copy = sorted(pair)  # t000 < t000-para: the first in input order is kept
        assert reasons[f"web/{copy}"] == f"dedupe:semantic_dup_of:web/{original}"
        assert reasons[f"web/{original}"] is None
    texts = [r["id"] for r in known["records"]]
    paraphrases = {max(p) for p in known["pairs"]}
    assert all(reasons[f"web/{t}"] is None for t in texts if t not in paraphrases)  # half-overlaps stay
    # without CLIP weights images and videos are not compared: kept as they are
    assert all(reason is None for rid, reason in reasons.items() if not rid.startswith("web/"))
    assert report["dedupe"]["text_semantic_dropped"] == len(known["pairs"])


def test_recorded_similarities_are_model2vec_cosines(known, text_run):
    """clusters.parquet's similarity is the cosine model2vec itself gives the two texts."""
    from model2vec import StaticModel

    out, _ = text_run
    model = StaticModel.from_pretrained(known["model"], force_download=False)
    text = {f"web/{r['id']}": r["text"] for r in known["records"]}
    rows = [r for r in pq.read_table(out / "clusters.parquet").to_pylist() if r["duplicate"] == "semantic"]
    assert len(rows) == len(known["pairs"])
    for row in rows:
        a, b = model.encode([text[row["member_id"]], text[row["kept_id"]]], normalize=True)
        assert row["similarity"] == pytest.approx(float(a @ b), abs=1e-5)
        assert row["similarity"] >= 0.9 and row["space"] == "text" and row["dropped"]


def test_embeddings_are_stored_and_found_pairs_match_all_pairs(known, text_run):
    """Every stored text embedding is the model's; with the clusters, the pairs found are the all-pairs ones."""
    out, report = text_run
    embedder = StaticTextEmbedder(known["model"])
    stored, ids = [], []
    for items in sorted((out / "_embeddings").glob("items-*.parquet")):
        table = pq.read_table(items).to_pylist()
        matrix = np.load(items.with_name(items.name.replace("items", "text").replace(".parquet", ".npy")))
        for row in table:
            if row["space"] == 0:
                stored.append(matrix[row["position"]])
                ids.append(row["id"])
    text = {f"web/{r['id']}": r["text"] for r in known["records"]}
    stored = np.stack(stored)
    np.testing.assert_allclose(stored, embedder([text[i] for i in ids]), atol=1e-6)
    similarity = stored @ stored.T
    brute = {frozenset({ids[i], ids[j]}) for i, j in zip(*np.nonzero(np.triu(similarity, 1) >= 0.9))}
    found = {
        frozenset({r["member_id"], r["kept_id"]})
        for r in pq.read_table(out / "clusters.parquet").to_pylist()
        if r["duplicate"]
    }
    assert found == brute and report["dedupe"]["kmeans"]["text"] == 3


def test_a_new_threshold_reuses_the_embeddings_without_a_model(known, text_run, tmp_path, monkeypatch):
    out, _ = text_run
    halves = sorted(known["halves"])
    model = StaticTextEmbedder(known["model"])
    text = {r["id"]: r["text"] for r in known["records"]}

    def cosine(half: str) -> float:  # a half-overlapping document against its original
        a, b = model([text[half], text[half[:4]]])
        return float(a @ b)

    closest = max(halves, key=cosine)
    monkeypatch.setattr(DedupeEmbed, "__init__", lambda *a, **k: pytest.fail("embedded again"))
    lower = cosine(closest) - 0.01
    assert lower < 0.9
    report = run_dedupe(config(known, tmp_path / "lower", semantic_threshold=lower, reuse_embeddings=str(out)))
    reasons = _reasons(tmp_path / "lower")
    assert reasons[f"web/{closest}"] == f"dedupe:semantic_dup_of:web/{closest[:4]}"
    assert report["dedupe"]["embeddings"]["reused_from"] == str(out)
    again = run_dedupe(config(known, tmp_path / "same", reuse_embeddings=str(tmp_path / "lower")))
    assert again["dropped"] < report["dropped"]
    for name in ("ledger.parquet", "manifest.parquet", "clusters.parquet"):
        assert pq.read_table(tmp_path / "same" / name).equals(pq.read_table(out / name)), name


def test_reusing_embeddings_of_other_settings_is_refused(known, text_run, tmp_path):
    out, _ = text_run
    other = tmp_path / "other-model"
    shutil.copytree(known["model"], other)
    with pytest.raises(ConfigError, match="text_model"):
        run_dedupe(config(known, tmp_path / "x", text_model=str(other), reuse_embeddings=str(out)))
    assert not (tmp_path / "x").exists()  # refused before anything was written
    with pytest.raises(ConfigError, match="needs a model"):
        DedupeConfig(input=str(known["in"]), output=str(tmp_path / "y"), semantic=True)


def test_image_and_video_copies_found_with_clip(known, tiny_clip, tmp_path):
    out = tmp_path / "media"
    report = run_dedupe(
        config(known, out, tiny_clip, semantic_threshold=IMAGE_THRESHOLD, semantic_clusters=None, text=False)
    )
    reasons = _reasons(out)
    assert reasons["photos/p0_jpeg.jpg#0"] == "dedupe:semantic_dup_of:photos/p0.png#0"
    assert reasons["photos/p1_small.png#0"] == "dedupe:semantic_dup_of:photos/p1.png#0"
    assert all(reasons[f"photos/p{i}.png#0"] is None for i in range(5))
    assert reasons["clips/c0_reencoded.mp4#0"] == "dedupe:semantic_dup_of:clips/c0.mp4#0"
    assert reasons["clips/c1.mp4#0"] is None and reasons["clips/c0.mp4#0"] is None
    assert all(reasons[f"web/{r['id']}"] is None for r in known["records"])  # text not compared
    assert report["dedupe"]["image_semantic_dropped"] == 2 and report["dedupe"]["video_semantic_dropped"] == 1


def test_keep_longest_keeps_the_larger_picture(known, tiny_clip, tmp_path):
    out = tmp_path / "longest"
    run_dedupe(
        config(
            known,
            out,
            tiny_clip,
            semantic_threshold=IMAGE_THRESHOLD,
            semantic_clusters=None,
            keep="longest",
            text=False,
        )
    )
    assert _reasons(out)["photos/p1_small.png#0"] == "dedupe:semantic_dup_of:photos/p1.png#0"
    rows = pq.read_table(out / "clusters.parquet").to_pylist()
    kept_of_p1 = {r["kept_id"] for r in rows if r["member_id"].startswith("photos/p1")}
    assert kept_of_p1 == {"photos/p1.png#0"}


def test_an_unreadable_primary_image_fails_its_record(known, tiny_clip, tmp_path):
    broken = tmp_path / "in"
    shutil.copytree(known["in"], broken)
    row = next(r for r in pq.read_table(broken / "manifest.parquet").to_pylist() if r[S.ID] == "photos/p4.png#0")
    item = row[S.MEDIA][0]
    with open(broken / item["uri"], "r+b") as handle:
        handle.seek(item["offset"])
        handle.write(b"\0" * item["size"])
    cfg = config(
        {**known, "in": broken}, tmp_path / "out", tiny_clip, semantic_threshold=IMAGE_THRESHOLD, semantic_clusters=None
    )
    report = run_dedupe(cfg)
    ledger = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()}
    assert ledger["photos/p4.png#0"]["status"] == "failed"
    assert ledger["photos/p4.png#0"]["reason"].startswith("dedupe:undecodable_image")
    assert report["failed"] == 1 and report["inputs"] == report["kept"] + report["dropped"] + 1


def test_ray_and_in_process_write_identical_outputs(ray_session, known, tiny_clip, tmp_path):
    local = run_dedupe(
        config(known, tmp_path / "local", tiny_clip, semantic_threshold=IMAGE_THRESHOLD, semantic_clusters=None)
    )
    ray = run_dedupe(
        config(
            known,
            tmp_path / "ray",
            tiny_clip,
            semantic_threshold=IMAGE_THRESHOLD,
            semantic_clusters=None,
            run=RunSettings(executor="ray"),
        )
    )
    assert ray["executor"]["chosen"] == "ray" and local["dropped"] == ray["dropped"] > 0
    _same_output(tmp_path / "local", tmp_path / "ray")
    for path in sorted((tmp_path / "local" / "_embeddings").iterdir()):
        assert path.read_bytes() == (tmp_path / "ray" / "_embeddings" / path.name).read_bytes(), path.name


def test_the_cli_runs_it_and_refuses_a_run_without_a_model(known, tmp_path):
    from click.testing import CliRunner

    from fusionforge.cli.main import cli

    args = ["dedupe", str(known["in"]), "--semantic", "--executor", "local", "--semantic-clusters", "3"]
    done = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "out"), "--text-model", known["model"]])
    assert done.exit_code == 0, done.output
    printed = "".join(done.output.split())  # the console wraps long paths anywhere
    assert "semanticclusters:" in printed and "_embeddings" in printed
    assert json.loads((tmp_path / "out" / "report.json").read_text())["dedupe"]["text_semantic_dropped"] == len(
        known["pairs"]
    )
    refused = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "none")])
    assert refused.exit_code == 2 and "--semantic needs a model" in refused.output
