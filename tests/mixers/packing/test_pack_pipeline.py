"""``pack`` end to end on the sample corpus: plan, ledger accounting, Ray = in-process, resume, materialize."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.mixers.packing.job import PackConfig, run_pack
from fusionforge.mixers.packing.materialize import Role
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import RunSettings, build_config
from fusionforge.pipelines.shard import ShardConfig, run_shard


@pytest.fixture(scope="module")
def sharded(sample_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pack") / "shards"
    corpus = {k: sample_corpus[k] for k in ("web", "news", "photos", "pairs", "docs", "clips")}
    run_shard(
        ShardConfig(
            inputs=tuple(f"{k}={v}" for k, v in corpus.items()),
            output=str(out),
            shard_count=12,
            run=RunSettings(executor="local"),
        )
    )
    return out


def _pack(sharded, out, **kwargs):
    params = {"seq_len": 1024, "vision_ratio": 0.1, "window": 4, "executor": "local", **kwargs}
    return run_pack(build_config(PackConfig, {"input": str(sharded), "output": str(out), **params}))


def test_plan_accounts_for_every_record_and_token(sharded, tiny_tokenizer, tmp_path):
    report = _pack(sharded, tmp_path / "p", tokenizer=str(tiny_tokenizer))
    manifest = pq.read_table(sharded / "manifest.parquet")
    ledger = pq.read_table(tmp_path / "p" / "ledger.parquet")
    assert ledger.num_rows == manifest.num_rows == report["inputs"] == report["kept"] + report["dropped"]
    assert set(ledger.column("id").to_pylist()) == set(manifest.column("id").to_pylist())
    plan = pq.read_table(tmp_path / "p" / "plan.parquet").to_pylist()
    assert [r["sequence_id"] for r in plan] == list(range(len(plan)))
    kept = {r["id"] for r in ledger.to_pylist() if r["status"] == "kept"}
    placed = {s["sample_id"] for r in plan for s in r["segments"]}
    assert placed == kept
    for row in plan:
        assert row["tokens"] <= 1024 and row["cu_seqlens"][-1] == row["tokens"]
        assert row["vision_tokens"] == sum(s["vision_tokens"] for s in row["segments"])
    assert report["text_tokens_method"] == f"tokenizer:{tiny_tokenizer}"
    assert abs(report["global_vision_ratio"] - 0.1) < 0.01
    assert report["vision_tokens"] > 0 and report["sequences"] == len(plan)
    surplus = [r for r in ledger.to_pylist() if r["reason"] == "pack:surplus"]
    assert len(surplus) == report["dropped"]


def test_estimate_is_labelled_and_oversize_images_are_resized(sharded, tmp_path):
    report = _pack(
        sharded, tmp_path / "e", seq_len=32, vision_ratio=None, window=2, preset_overrides={"max_patches": 16384}
    )
    assert report["text_tokens_method"].startswith("estimate")
    assert report["resized_media"] > 0  # a 160x160 image costs 36 + 4 tokens at kimi-k25 defaults
    plan = pq.read_table(tmp_path / "e" / "plan.parquet").to_pylist()
    assert all(r["tokens"] <= 32 for r in plan)
    images = [m for r in plan for s in r["segments"] for m in s["media"] if m["kind"] == "image"]
    assert images and all(m["vision_tokens"] <= 28 for m in images)


@pytest.mark.slow
@pytest.mark.ray
def test_ray_plan_equals_in_process_plan(ray_session, sharded, tmp_path):
    _pack(sharded, tmp_path / "local")
    _pack(sharded, tmp_path / "ray", executor="ray")
    for name in ("plan.parquet", "ledger.parquet"):
        assert pq.read_table(tmp_path / "ray" / name).equals(pq.read_table(tmp_path / "local" / name))


def test_mixture_and_resume(sharded, tmp_path):
    mix = tmp_path / "mix.yaml"
    mix.write_text(
        "seed: 3\nmax_epochs: 2\nsources:\n  web: {proportion: 0.5}\n  photos: {proportion: 0.3}\n  docs: {repeat: 2}\n"
    )
    report = _pack(sharded, tmp_path / "m", mixture=str(mix), vision_ratio=None)
    assert set(report["mixture"]) == {"web", "photos", "docs"}
    assert report["mixture"]["docs"]["epochs"] == 2.0
    for name, row in report["mixture"].items():  # the plan realises the target mixture
        assert abs(row["realised_share"] - row["target_share"]) < 0.01, (name, row)
        if row["epochs"] == int(row["epochs"]):  # whole epochs: every token, exactly
            assert row["realised_tokens"] == row["target_tokens"], (name, row)
    assert report["warnings"] == []
    assert report["reasons"].get("pack:not_in_mixture", 0) > 0
    plan = pq.read_table(tmp_path / "m" / "plan.parquet").to_pylist()
    epochs = {s["epoch"] for r in plan for s in r["segments"] if s["source"] == "docs"}
    assert epochs == {0, 1}
    with pytest.raises(ConfigError, match="not empty"):
        _pack(sharded, tmp_path / "m", mixture=str(mix), vision_ratio=None)
    again = _pack(sharded, tmp_path / "m", mixture=str(mix), vision_ratio=None, resume=True)
    assert again == report
    (tmp_path / "m" / "_SUCCESS").unlink()
    (tmp_path / "m" / "plan.parquet").unlink()
    resumed = _pack(sharded, tmp_path / "m", mixture=str(mix), vision_ratio=None, resume=True)
    assert pq.read_table(tmp_path / "m" / "plan.parquet").to_pylist() == plan
    assert resumed["sequences"] == report["sequences"]


def test_materialize_needs_a_fitting_tokenizer_before_any_work(sharded, tiny_tokenizer, tmp_path):
    with pytest.raises(ConfigError, match="--tokenizer"):
        _pack(sharded, tmp_path / "x", materialize=True)
    assert not (tmp_path / "x").exists()  # refused up front: no counting, no plan
    with pytest.raises(ConfigError, match=r"no \['<video>'\] token"):  # llava-onevision's video placeholder
        _pack(sharded, tmp_path / "y", materialize=True, tokenizer=str(tiny_tokenizer), vision_preset="llava-onevision")
    assert not (tmp_path / "y").exists()


def test_materialize_writes_token_ids_and_media_in_order(sharded, tiny_tokenizer, tmp_path):
    report = _pack(
        sharded, tmp_path / "w", tokenizer=str(tiny_tokenizer), materialize=True, samples_per_shard=5, seq_len=256
    )  # short enough that long texts are cut across sequences
    assert report["materialized"]["samples"] == report["sequences"]
    shards = sorted(str(p) for p in (tmp_path / "w" / "packed").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert len(samples) == report["sequences"]
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_tokenizer / "tokenizer.json"))
    pad = tok.token_to_id("<|media_pad|>")
    for sample in samples:
        header = json.loads(sample["json"])
        ids = np.load(__import__("io").BytesIO(sample["input_ids.npy"]))
        roles = np.load(__import__("io").BytesIO(sample["roles.npy"]))
        assert ids.shape == roles.shape == (256,) and roles.dtype == np.uint8
        assert int((ids[: header["tokens"]] == pad).sum()) == header["vision_tokens"]
        assert ((roles >= Role.IMAGE) == (ids == pad)).all() and not roles[header["tokens"] :].any()
        for span in header["media"]:
            assert span["member"].split(".", 1)[1] in sample
            assert (ids[span["offset"] : span["offset"] + 1] != pad).all() or span["kind"] == "video"
            assert span["format"] and (span["kind"] != "video" or span["frames"] > 0)
        assert header["cu_seqlens"][-1] == header["tokens"]
    # text records: the ids are the tokenizer's own encoding of the source text (+ EOS), split or not
    from fusionforge.pipelines.transform import ManifestSource

    source = ManifestSource(str(sharded))
    rows = {}
    eos = tok.token_to_id("<|endoftext|>")
    checked = split = 0
    for sample in samples:
        header = json.loads(sample["json"])
        ids = np.load(__import__("io").BytesIO(sample["input_ids.npy"]))
        for seg in header["segments"]:
            if seg["modality"] != "text":
                continue
            if seg["partition"] not in rows:
                rows[seg["partition"]] = [r for t in source.read(seg["partition"]) for r in t.to_pylist()]
            record = rows[seg["partition"]][seg["row"]]
            assert record["id"] == seg["sample_id"]
            expected = tok.encode(record["text"], add_special_tokens=False).ids + [eos]
            start, length = seg["sample_start"], seg["length"]
            assert ids[seg["offset"] : seg["offset"] + length].tolist() == expected[start : start + length]
            roles = np.load(__import__("io").BytesIO(sample["roles.npy"]))[seg["offset"] : seg["offset"] + length]
            expected_roles = [Role.TEXT] * (len(expected) - 1) + [Role.EOS]
            assert roles.tolist() == expected_roles[start : start + length]
            checked += 1
            split += seg["split"]
    assert checked > 10 and split > 0  # text records checked, long ones cut across sequences among them


def test_cli_pack_and_tokens(sharded, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "pack",
            str(sharded),
            "-o",
            str(tmp_path / "c"),
            "--seq-len",
            "2048",
            "--vision-ratio",
            "0.1",
            "--window",
            "4",
            "--executor",
            "local",
            "--json",
            "--ratio-tolerance",
            "1",
            "--fail-on-tolerance",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["seq_len"] == 2048 and report["within_tolerance"]["ok"]
    assert report["window_ratio_error_mean"] <= report["window_ratio_error_p95"] <= report["window_ratio_error_max"]
    # a budget that photos cannot fill within max_epochs: a warning; a zero tolerance with the flag: exit status 3
    mix = tmp_path / "mix.yaml"
    mix.write_text(
        "budget_tokens: 20000\nmax_epochs: 1\nsources:\n  web: {proportion: 0.5}\n  photos: {proportion: 0.5}\n"
    )
    missed = CliRunner().invoke(
        cli,
        [
            "pack",
            str(sharded),
            "-o",
            str(tmp_path / "t"),
            "--seq-len",
            "2048",
            "--vision-ratio",
            "0.1",
            "--window",
            "4",
            "--executor",
            "local",
            "--mixture",
            str(mix),
            "--ratio-tolerance",
            "0",
            "--fail-on-tolerance",
        ],
    )
    assert missed.exit_code == 3, missed.output
    assert "outside --ratio-tolerance 0.0" in missed.stderr and "within --ratio-tolerance" in missed.stdout
    assert "warning:" in missed.stderr and "'photos'" in missed.stderr and "max_epochs" in missed.stderr
    written = json.loads((tmp_path / "t" / "report.json").read_text())
    assert not written["within_tolerance"]["ok"] and written["mixture"]["photos"]["capped_by_max_epochs"]
    assert written["warnings"] and "budget_tokens" in written["warnings"][-1]
    result = CliRunner().invoke(cli, ["tokens", "--preset", "qwen2-vl", "640x480", "64x48x7", "1x300", "--json"])
    rows = json.loads(result.stdout)["items"]
    assert rows[0]["tokens"] == 17 * 23 and rows[1]["chunks"] == 4 and "aspect" in rows[2]["error"]
    bad = CliRunner().invoke(cli, ["pack", str(sharded), "-o", str(tmp_path / "d"), "--vision-ratio", "2"])
    assert bad.exit_code != 0 and "--vision-ratio" in bad.output


def test_oversize_and_bad_media_are_rejected_with_their_reason_in_the_ledger(sample_corpus, tmp_path):
    """qwen2-vl at L=128 with min_pixels forcing >= 160 tokens: every image is oversize (shrinking cannot help),
    every video too (a frame costs >= 128 tokens), and a 600x2 image fails Qwen's aspect limit (bad_media_size)."""
    from PIL import Image

    wide = tmp_path / "wide"
    wide.mkdir()
    Image.new("RGB", (600, 2), (200, 30, 30)).save(wide / "strip.png")
    Image.new("RGB", (64, 64), (30, 30, 200)).save(wide / "square.png")
    shards = tmp_path / "shards"
    run_shard(
        ShardConfig(
            inputs=(f"web={sample_corpus['web']}", f"wide={wide}", f"clips={sample_corpus['clips']}"),
            output=str(shards),
            shard_count=3,
            run=RunSettings(executor="local"),
        )
    )
    report = run_pack(
        PackConfig(
            input=str(shards),
            output=str(tmp_path / "o"),
            seq_len=128,
            vision_ratio=None,
            window=4,
            run=RunSettings(executor="local"),
            vision_preset="qwen2-vl",
            preset_overrides={"min_pixels": 160 * 28 * 28},
        )
    )
    ledger = {r["id"]: r for r in pq.read_table(tmp_path / "o" / "ledger.parquet").to_pylist()}
    manifest = pq.read_table(shards / "manifest.parquet").to_pylist()
    assert set(ledger) == {r["id"] for r in manifest}
    by_source = {}
    for row in ledger.values():
        by_source.setdefault(row["source"], []).append((row["status"], row["reason"]))
    assert len(by_source["wide"]) == 2
    strip = next(r for r in ledger.values() if r["source"] == "wide" and "strip" in r["id"])
    square = next(r for r in ledger.values() if r["source"] == "wide" and "square" in r["id"])
    assert (strip["status"], strip["reason"]) == ("dropped", "mixers_pack_items_v1:bad_media_size")
    assert (square["status"], square["reason"]) == ("dropped", "mixers_pack_items_v1:oversize_image")
    clips = by_source["clips"]
    assert clips and set(clips) == {("dropped", "mixers_pack_items_v1:oversize_video_frame")}
    assert report["rejected_oversize"] == 1 + len(clips)  # bad sizes are counted under their own reason
    assert report["reasons"]["mixers_pack_items_v1:oversize_video_frame"] == len(clips)
    assert report["reasons"]["mixers_pack_items_v1:bad_media_size"] == 1
    assert all(status == "kept" for status, _ in by_source["web"]) and report["vision_tokens"] == 0
    assert report["dropped"] == 2 + len(clips) and report["sequences"] > 0
