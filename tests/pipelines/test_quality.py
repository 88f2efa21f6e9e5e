import json
import math
import tarfile
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.filter_config import FilterEntry, load_filters
from fusionforge.pipelines.quality import QualityConfig, run_quality
from fusionforge.pipelines.shard import ShardConfig, run_shard
from fusionforge.pipelines.transform import TransformConfig

FILTERS = """
filters:
  - text_lang_id_v1
  - stage: text_gopher_quality_v1
    languages: [en]
    min_words: 30
  - text_gopher_repetition_v1
  - stage: text_c4_lines_v2
    min_sentences: 3
  - text_fineweb_quality_v1
  - image_checks_v1
  - video_probe_v1
  - video_scenes_v1
  - video_motion_v1
  - stage: video_frames_v1
    max_side: 64
    store_frames: true
"""


@pytest.fixture(scope="module")
def sharded(sample_corpus, tmp_path_factory):
    """The sample corpus sharded with header-only video checks, so the truncated clip reaches the filters."""
    out = tmp_path_factory.mktemp("q") / "shards"
    names = ("web", "news", "photos", "docs", "clips")
    run_shard(
        ShardConfig(
            inputs=tuple(f"{k}={sample_corpus[k]}" for k in names),
            output=str(out),
            shard_count=20,
            video_check="probe",
            run=RunSettings(executor="local"),
        )
    )
    return out


def _run(sharded, out, filters, executor="local", resume=False):
    config = out.parent / f"{out.name}.yaml"
    config.write_text(filters)
    cfg = QualityConfig(
        TransformConfig(input=str(sharded), output=str(out), run=RunSettings(executor=executor, resume=resume)),
        tuple(load_filters(str(config))),
    )
    return run_quality(cfg)


@pytest.fixture(scope="module")
def filtered(sharded, tmp_path_factory):
    out = tmp_path_factory.mktemp("f") / "clean"
    return out, _run(sharded, out, FILTERS)


def test_every_record_is_accounted_for_with_drops_per_reason_per_source(sharded, filtered):
    out, report = filtered
    inputs = pq.read_metadata(sharded / "manifest.parquet").num_rows
    assert report["inputs"] == inputs and report["derived"] == 3
    assert report["inputs"] + report["derived"] == report["kept"] + report["dropped"] + report["failed"]
    per_source = {}
    for counts in report["reasons_by_source"].values():
        for reason, n in counts.items():
            per_source[reason] = per_source.get(reason, 0) + n
    assert per_source == report["reasons"]
    assert report["reasons"]["video_scenes_v1:split_into_clips"] == 1
    assert report["reasons"]["video_motion_v1:static"] >= 2
    assert report["language_detector"] == "py3langid-0.4.0"
    assert report["scores"]["text_gopher_quality_v1__words"]["count"] > 0
    assert [f["stage"] for f in yaml.safe_load((out / "config.yaml").read_text())["stages"]][:2] == [
        "text_lang_id_v1",
        "text_gopher_quality_v1",
    ]


def test_rejected_records_keep_their_scores_and_the_truncated_video_has_a_reason(filtered):
    out, report = filtered
    rejected = pq.read_table(out / "rejected")
    assert rejected.num_rows == report["dropped"] + report["failed"]
    gopher = rejected.filter(pc.starts_with(rejected.column("drop_reason"), "text_gopher_quality_v1"))
    assert gopher.num_rows and gopher.column("text_gopher_quality_v1__words").null_count == 0
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    broken = next(r for r in ledger if r["id"].startswith("clips/broken"))
    assert broken["status"] == "failed" and broken["reason"].startswith("video_scenes_v1:corrupt_video")


def test_scene_clips_are_records_with_4_frame_chunks_in_the_shards(filtered):
    out, _ = filtered
    manifest = pq.read_table(out / "manifest.parquet")
    clips = [r for r in manifest.to_pylist() if r["parent_id"]]
    assert clips and all(r["id"].startswith(r["parent_id"] + "#t=") for r in clips)
    clip = clips[0]
    assert clip["video_frames_v1__n_frames"] == sum(clip["video_frames_v1__chunk_sizes"])
    frames = [m for m in clip["media"] if m["kind"] == "frame"]
    assert len(frames) == clip["video_frames_v1__n_frames"]
    with tarfile.open(out / clip["shard"]) as tar:
        names = tar.getnames()
        header = json.loads(tar.extractfile(f"{clip['key']}.json").read())
    assert f"{clip['key']}.000.mp4" in names and f"{clip['key']}.001.jpg" in names
    assert header["parent_id"] == clip["parent_id"] and header["media"][1]["kind"] == "frame"


def test_top_fraction_scores_once_then_keeps_the_best(sharded, sample_corpus, tmp_path):
    from fusionforge.filters.text.fasttext_train import TrainConfig, train_fasttext

    web = [json.loads(line) for line in Path(sample_corpus["web"]).read_text().splitlines()]
    labelled = tmp_path / "lang.jsonl"
    labelled.write_text("\n".join(json.dumps({"text": r["text"], "label": r["lang"]}) for r in web))
    train_fasttext(
        TrainConfig(inputs=(str(labelled),), output=str(tmp_path / "en.bin"), bucket=20_000, dim=32, epoch=25, lr=0.5)
    )
    filters = (
        f"filters:\n  - text_lang_id_v1\n  - stage: text_fasttext_v1\n    model_path: {tmp_path / 'en.bin'}\n"
        f"    label: en\n    top_fraction: 0.25\n    languages: [en, de, fr, es]\n"
    )
    report = _run(sharded, tmp_path / "top", filters)
    scored = [
        s
        for s in pq.read_table(tmp_path / "top" / "manifest.parquet").column("text_fasttext_v1__score").to_pylist()
        + pq.read_table(tmp_path / "top" / "rejected").column("text_fasttext_v1__score").to_pylist()
        if s is not None
    ]
    kept = pq.read_table(tmp_path / "top" / "manifest.parquet").column("text_fasttext_v1__score").drop_null()
    threshold = report["thresholds"]["text_fasttext_v1"]["threshold"]
    assert threshold == sorted(scored, reverse=True)[math.ceil(0.25 * len(scored)) - 1]
    assert len(kept) == sum(s >= threshold for s in scored) >= math.ceil(0.25 * len(scored))  # ties all kept
    assert min(kept.to_pylist()) == threshold
    assert report["reasons"] == {"text_fasttext_v1:low_score": len(scored) - len(kept)}
    stages = yaml.safe_load((tmp_path / "top" / "config.yaml").read_text())["stages"]
    assert stages[1]["reuse_scores"] is True and stages[1]["resolved_threshold"] == min(kept.to_pylist())
    assert len(list((tmp_path / "top" / "_work" / "scores").glob("part-*.parquet"))) == report["partitions"]
    assert _run(sharded, tmp_path / "top", filters, resume=True) == report  # finished: the report, no new work
    with pytest.raises(ConfigError, match="not empty"):
        _run(sharded, tmp_path / "top", filters)


def test_clip_top_fraction_keeps_the_best_scored_image_text_pairs(sharded, tiny_clip, tmp_path):
    filters = (
        f"filters:\n  - stage: image_clip_score_v1\n    model: {tiny_clip['config']}\n"
        f"    pretrained: {tiny_clip['st']}\n    device: cpu\n    top_fraction: 0.3\n"
    )
    report = _run(sharded, tmp_path / "clip", filters)
    column = "image_clip_score_v1__score"
    rows = [
        r
        for part in ("manifest.parquet", "rejected")
        for r in pq.read_table(tmp_path / "clip" / part, columns=["id", "modality", "drop_reason", column]).to_pylist()
    ]
    scored = {r["id"]: r[column] for r in rows if r[column] is not None}
    assert len(scored) >= 20 and {r["modality"] for r in rows if r["id"] in scored} == {"image"}
    ranked = sorted(scored, key=scored.get, reverse=True)
    best = set(ranked[: math.ceil(0.3 * len(scored))])
    threshold = report["thresholds"]["image_clip_score_v1"]["threshold"]
    assert threshold == min(scored[i] for i in best)
    kept = {r["id"] for r in pq.read_table(tmp_path / "clip" / "manifest.parquet", columns=["id"]).to_pylist()}
    assert kept & set(scored) == best  # exactly the top 30% of image-text pairs (random weights: no ties)
    assert all(r["drop_reason"] == "image_clip_score_v1:low_score" for r in rows if r["id"] in set(scored) - best)
    assert report["reasons"] == {"image_clip_score_v1:low_score": len(scored) - len(best)}
    assert report["kept"] == report["inputs"] - len(scored) + len(best)  # records CLIP does not judge are kept
    stage = yaml.safe_load((tmp_path / "clip" / "config.yaml").read_text())["stages"][0]
    assert stage["reuse_scores"] is True and stage["resolved_threshold"] == threshold


def test_bad_filter_lists_fail_before_any_output(sharded, tmp_path):
    cases = {
        "filters:\n  - text_nope_v1\n": "unknown stage",
        "filters:\n  - stage: text_gopher_quality_v1\n    min_wordz: 3\n": "unknown parameter",
        "filters:\n  - stage: text_gopher_quality_v1\n    languages: [en]\n": "must come before",
        (
            "filters:\n  - video_scenes_v1\n  - stage: video_clip_score_v1\n"
            "    pretrained: /x.pt\n    top_fraction: 0.3\n"
        ): "cannot follow",
        "filters:\n  - stage: text_fasttext_v1\n    model_path: /nowhere.bin\n": "does not exist",
        "filters:\n  - stage: image_checks_v1\n    max_aspect_ratio: 0.2\n": "max_aspect_ratio",
        "filters: []\n": "non-empty list",
    }
    for i, (text, message) in enumerate(cases.items()):
        with pytest.raises(ConfigError, match=message):
            _run(sharded, tmp_path / f"bad{i}", text)
        assert not (tmp_path / f"bad{i}").exists()


@pytest.mark.slow
@pytest.mark.ray
def test_ray_writes_the_same_shards_as_in_process(ray_session, sharded, filtered, tmp_path):
    local, _ = filtered
    _run(sharded, tmp_path / "ray", FILTERS, executor="ray")
    names = sorted(p.name for p in (local / "shards").glob("*.tar"))
    assert names == sorted(p.name for p in (tmp_path / "ray" / "shards").glob("*.tar"))
    for name in names:
        assert (tmp_path / "ray" / "shards" / name).read_bytes() == (local / "shards" / name).read_bytes()
    assert pq.read_table(tmp_path / "ray" / "ledger.parquet").equals(pq.read_table(local / "ledger.parquet"))


def test_entries_describe_themselves():
    entry = FilterEntry("image_clip_score_v1", {"pretrained": "w.pt"}, {"num_gpus": 1})
    assert entry.describe() == {"stage": "image_clip_score_v1", "pretrained": "w.pt", "resources": {"num_gpus": 1}}
