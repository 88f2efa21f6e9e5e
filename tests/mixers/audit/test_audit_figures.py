"""Audit figures against values computed by hand on a small shard output."""

import pyarrow as pa
import pytest
from audit_outputs import media, record, write_output

from fusionforge.mixers.audit import run_audit


@pytest.fixture()
def shard_out(tmp_path):
    rows = [
        record("web/a", "web", text="abcdé fgh", meta={"lang": "en"}),  # 9 chars, 10 bytes -> 3 tokens (estimate)
        record("web/b", "web", text="x" * 40, meta={"lang": "de"}, text_tokens=10, text_lang_v1__lang="fr"),
        record("photos/c", "photos", "image", text="a cat", items=[media("image", 56, 30, 1000)]),
        record(
            "clips/d",
            "clips",
            "video",
            text="clip",
            items=[media("video", 28, 28, 5000, 9, 0.9)],
            video_frames_v1__n_frames=5,
        ),
        record("clips/e", "clips", "video", items=[media("video", 56, 56, 6000, 8, 0.8)]),
        record(
            "docs/f",
            "docs",
            "interleaved",
            text="hello world",
            text_tokens=50,
            vision_tokens=100,
            items=[media("image", 28, 28, 100), media("image", 28, 28, 100)],
        ),
        record("web/g", "web", text="   ", drop_reason="ingest_finalize_v1:empty_text"),
        record("web/h", "web", error="read:malformed_json: line 3"),
    ]
    extra = {"text_lang_v1__lang": pa.string(), "video_frames_v1__n_frames": pa.int64()}
    return write_output(tmp_path / "shard", "shard", rows, extra=extra)


def test_totals_tokens_and_bytes_match_hand_computed_values(shard_out):
    report = run_audit([str(shard_out)])
    assert report["exact"] is True and report["sample"] is None
    totals = report["totals"]
    assert totals["records"] == 6
    assert totals["text_bytes"] == 10 + 40 + 5 + 4 + 0 + 11
    assert totals["media_bytes"] == 1000 + 5000 + 6000 + 200
    # text: a 3 (9 chars / 4), b 10 (recorded), c 2, d 1, e none, f 50 (recorded)
    assert totals["text_tokens"] == 3 + 10 + 2 + 1 + 0 + 50
    # vision: c 2x2 patches; d ceil(5 sampled frames / 4) = 2 chunks x 1; e ceil(8/4) = 2 x 4; f 100 recorded
    assert totals["vision_tokens"] == 4 + 2 + 8 + 100
    assert totals["tokens"] == 180
    assert totals["vision_ratio"] == pytest.approx(114 / 180, rel=1e-9)
    assert (totals["images"], totals["videos"]) == (3, 2)
    basis = report["token_basis"]
    assert (basis["text_estimated_records"], basis["vision_estimated_records"], basis["records"]) == (3, 3, 6)


def test_mixture_groups_by_source_modality_language(shard_out):
    report = run_audit([str(shard_out)])
    groups = {(r["source"], r["modality"], r["language"]): (r["records"], r["tokens"]) for r in report["mixture"]}
    assert groups == {
        ("web", "text", "en"): (1, 3),
        ("web", "text", "fr"): (1, 10),  # the language-ID column wins over meta's "de"
        ("photos", "image", "und"): (1, 6),
        ("clips", "video", "und"): (2, 11),
        ("docs", "interleaved", "und"): (1, 150),
    }
    shares = {r["source"]: r["token_share"] for r in report["by_source"]}
    assert shares == pytest.approx({"docs": 150 / 180, "web": 13 / 180, "clips": 11 / 180, "photos": 6 / 180})
    assert [r["source"] for r in report["by_source"]] == ["docs", "web", "clips", "photos"]
    assert report["vision_ratio"]["realised"] == pytest.approx(114 / 180)
    assert report["vision_ratio"]["basis"] == "records of step shard"


def test_distributions_have_exact_quantiles_for_few_values(shard_out):
    kept = run_audit([str(shard_out)])["distributions"]["shard"]["kept"]
    assert kept["image_width"]["count"] == 3 and kept["image_width"]["quantiles"]["p50"] == 28
    assert kept["image_width"]["min"] == 28 and kept["image_width"]["max"] == 56
    assert kept["image_aspect"]["max"] == pytest.approx(56 / 30)
    assert kept["video_frames"]["count"] == 2 and kept["video_frames"]["mean"] == 8.5
    assert kept["video_sampled_frames"]["count"] == 1 and kept["video_sampled_frames"]["max"] == 5
    assert kept["video_duration_s"]["quantiles"]["p99"] == 0.9
    assert kept["text_tokens/text"]["quantiles"] == {
        "p1": 3,
        "p5": 3,
        "p25": 3,
        "p50": 3,
        "p75": 10,
        "p95": 10,
        "p99": 10,
    }
    assert kept["vision_tokens/video"]["min"] == 2 and kept["vision_tokens/video"]["max"] == 8
    assert all(h["quantiles_exact"] for h in kept.values())


def test_funnel_and_drop_reasons_of_one_step(shard_out):
    report = run_audit([str(shard_out)])
    rows = [(r["stage"], r["status"], r["removed"], r["remaining"]) for r in report["funnel"]["all"]]
    assert rows == [
        ("ingested", None, 0, 8),
        ("read:malformed_json", "failed", 1, 7),
        ("ingest_finalize_v1:empty_text", "dropped", 1, 6),
        ("kept", None, 0, 6),
    ]
    web = [(r["stage"], r["remaining"]) for r in report["funnel"]["web/text"]]
    assert web == [("ingested", 4), ("read:malformed_json", 3), ("ingest_finalize_v1:empty_text", 2), ("kept", 2)]
    reasons = {r["reason"]: (r["records"], r["share_of_step_inputs"], r["examples"]) for r in report["drop_reasons"]}
    assert reasons == {
        "read:malformed_json": (1, 0.125, ["web/h"]),
        "ingest_finalize_v1:empty_text": (1, 0.125, ["web/g"]),
    }
    rejected = report["distributions"]["shard"]["rejected"]
    assert rejected["text_tokens/text"]["count"] == 1 and rejected["text_tokens/text"]["max"] == 1


def test_vision_presets_count_every_item_with_the_packers_rule(shard_out):
    from fusionforge.mixers.audit import AuditOptions
    from fusionforge.mixers.tokens.vision import image_tokens, video_tokens

    report = run_audit([str(shard_out)], AuditOptions(vision_presets=("kimi-k25", "qwen2-vl")))
    expected = {}
    for preset in ("kimi-k25", "qwen2-vl"):
        photos = image_tokens(56, 30, preset).tokens
        clips = video_tokens(28, 28, 5, preset).tokens + video_tokens(56, 56, 8, preset).tokens  # sampled frames first
        docs = 2 * image_tokens(28, 28, preset).tokens  # the preset replaces the recorded 100
        expected[preset] = {"photos": photos, "clips": clips, "docs": docs, "web": 0}
    rows = {(r["preset"], r["source"], r["modality"]): r for r in report["vision_by_preset"]}
    modality_of = {"photos": "image", "clips": "video", "docs": "interleaved", "web": "text"}
    for preset, per_source in expected.items():
        for source, tokens in per_source.items():
            assert rows[(preset, source, "all")]["vision_tokens"] == tokens, (preset, source)
            assert rows[(preset, source, modality_of[source])]["vision_tokens"] == tokens, (preset, source)
            assert rows[(preset, "all", modality_of[source])]["vision_tokens"] == tokens, (preset, source)
        total = rows[(preset, "all", "all")]
        assert total["vision_tokens"] == sum(per_source.values()) and total["text_tokens"] == 66
        assert total["vision_ratio"] == pytest.approx(total["vision_tokens"] / (66 + total["vision_tokens"]))
    web_text = rows[("kimi-k25", "web", "text")]  # 3 + 10 text tokens (a: estimated, b: recorded), no media
    assert (web_text["text_tokens"], web_text["vision_tokens"], web_text["vision_ratio"]) == (13, 0, 0.0)
    assert len(report["vision_by_preset"]) == 2 * (1 + 4 + 4 + 4)  # all; 4 modalities; 4 sources; 4 pairs
    assert expected["kimi-k25"] != expected["qwen2-vl"]
    assert report["token_basis"]["vision_preset"] == "kimi-k25"
    assert report["token_basis"]["vision_estimated_records"] == 0
    assert report["totals"]["vision_tokens"] == sum(expected["kimi-k25"].values())


def test_vision_presets_split_a_source_by_modality(tmp_path):
    from fusionforge.mixers.audit import AuditOptions
    from fusionforge.mixers.tokens.vision import image_tokens

    out = write_output(
        tmp_path / "shard",
        "shard",
        [
            record("legacy/a", "legacy", "image", text="old", items=[media("image", 56, 56, 10)]),
            record("legacy/b", "legacy", "text", text="x" * 20),
            record("legacy/c", "legacy", "image", items=[media("image", 28, 84, 10)]),
        ],
    )
    report = run_audit([str(out)], AuditOptions(vision_presets=("qwen2-vl",)))
    rows = {(r["source"], r["modality"]): (r["text_tokens"], r["vision_tokens"]) for r in report["vision_by_preset"]}
    images = image_tokens(56, 56, "qwen2-vl").tokens + image_tokens(28, 84, "qwen2-vl").tokens
    assert rows == {
        ("all", "all"): (1 + 5, images),
        ("all", "image"): (1, images),
        ("all", "text"): (5, 0),
        ("legacy", "all"): (1 + 5, images),
        ("legacy", "image"): (1, images),
        ("legacy", "text"): (5, 0),
    }


def test_an_unknown_preset_is_refused_before_any_work(shard_out):
    from fusionforge.mixers.audit import AuditOptions
    from fusionforge.pipelines.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown vision preset"):
        run_audit([str(shard_out)], AuditOptions(vision_presets=("gpt-9",)))


def test_stage_columns_that_are_identifiers_are_not_scores(tmp_path):
    rows = [
        record("web/a", "web", text="one", dedupe__cluster=7, dedupe__similarity=0.9, text_lang_id_v1__score=0.5),
        record("web/b", "web", text="two", dedupe__cluster=7, dedupe__similarity=1.0, text_lang_id_v1__score=0.7),
    ]
    extra = {"dedupe__cluster": pa.int64(), "dedupe__similarity": pa.float64(), "text_lang_id_v1__score": pa.float64()}
    out = write_output(tmp_path / "o", "dedupe", rows, extra=extra)
    kept = run_audit([str(out)])["distributions"]["dedupe"]["kept"]
    scores = sorted(k for k in kept if k.startswith("score/"))
    assert scores == ["score/dedupe__similarity", "score/text_lang_id_v1__score"]
    assert kept["score/dedupe__similarity"]["min"] == 0.9
