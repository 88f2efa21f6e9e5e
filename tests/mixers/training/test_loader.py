"""``PackedDataset`` on real pack outputs, checked against materialize, transformers' own M-RoPE, and tiny
random-weight Qwen2-VL and Kimi K2.5 models that train on its batches with images and videos."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import webdataset as wds
from tokenizers import Tokenizer

from fusionforge.cli.demo.training import tiny_kimi
from fusionforge.mixers.training.collate import IGNORE, collate_padded, collate_varlen, model_inputs
from fusionforge.mixers.training.dataset import PackedDataset
from fusionforge.mixers.training.media import MediaMismatch
from fusionforge.pipelines.core.errors import ConfigError


def token(tokenizer_folder, name):
    return Tokenizer.from_file(str(tokenizer_folder / "tokenizer.json")).token_to_id(name)


def vocab(tokenizer_folder):
    return Tokenizer.from_file(str(tokenizer_folder / "tokenizer.json")).get_vocab_size()


def tiny_qwen(tokenizer_folder, attn="sdpa"):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    config = Qwen2VLConfig(
        text_config={
            "vocab_size": vocab(tokenizer_folder),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
            "max_position_embeddings": 1024,
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "num_heads": 2,
            "hidden_size": 64,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=token(tokenizer_folder, "<|image_pad|>"),
        video_token_id=token(tokenizer_folder, "<|video_pad|>"),
        vision_start_token_id=token(tokenizer_folder, "<|vision_start|>"),
        vision_end_token_id=token(tokenizer_folder, "<|vision_end|>"),
        bos_token_id=None,
        eos_token_id=token(tokenizer_folder, "<|endoftext|>"),
    )
    config._attn_implementation = attn
    torch.manual_seed(0)
    return Qwen2VLForConditionalGeneration(config).eval()


@pytest.fixture(scope="module")
def qwen_samples(packed_qwen, vlm_tokenizer):
    return list(PackedDataset(packed_qwen, vlm_tokenizer))


@pytest.fixture(scope="module")
def kimi_samples(packed_kimi, vlm_tokenizer):
    return list(PackedDataset(packed_kimi, vlm_tokenizer))


def runs(ids, value):
    """Start and end of each run of ``value`` in a 1-D tensor."""
    hit = np.r_[0, (ids == value).numpy().astype(np.int8), 0]
    edges = np.flatnonzero(np.diff(hit))
    return list(zip(edges[::2], edges[1::2]))


@pytest.mark.parametrize("which", ["packed_qwen", "packed_qwen_cut"])
def test_ids_equal_the_materialized_shards_and_every_media_item_is_there(which, request, vlm_tokenizer):
    packed = request.getfixturevalue(which)
    samples = list(PackedDataset(packed, vlm_tokenizer))
    shards = sorted(str(p) for p in (packed / "packed").glob("*.tar"))
    materialized = {json.loads(s["json"])["sequence_id"]: s for s in wds.WebDataset(shards, shardshuffle=False)}
    plan = pq.read_table(packed / "plan.parquet").to_pylist()
    assert [s["sequence_id"] for s in samples] == [r["sequence_id"] for r in plan]
    if which == "packed_qwen_cut":  # records cut across sequences: texts, and the video (its groups, then its caption)
        cut = [s for r in plan for s in r["segments"] if s["sample_start"] > 0]
        assert {"text", "video", "image"} <= {s["modality"] for s in cut}
        assert any(s["split"] and len(s["media"]) > 1 for r in plan for s in r["segments"])
    kinds = {"image": 0, "video": 0}
    for sample, row in zip(samples, plan):
        ids = np.load(io.BytesIO(materialized[row["sequence_id"]]["input_ids.npy"]))
        assert sample["input_ids"].tolist() == ids[: row["tokens"]].tolist()
        assert sample["cu_seqlens"].tolist() == row["cu_seqlens"]
        spans = [m for s in row["segments"] for m in s["media"]]
        for kind, grid in (("image", "image_grid_thw"), ("video", "video_grid_thw")):
            count = sum(m["kind"] == kind for m in spans)
            kinds[kind] += count
            assert (0 if sample[grid] is None else len(sample[grid])) == count
    assert kinds["image"] == 5 and kinds["video"] >= 2  # the video was cut into chunk groups


def test_labels_learn_text_only_within_each_document(packed_qwen, vlm_tokenizer, qwen_samples):
    masked = {token(vlm_tokenizer, t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    for sample in qwen_samples:
        ids, labels, cu = sample["input_ids"], sample["labels"], sample["cu_seqlens"].tolist()
        starts = set(cu[:-1])
        for i, (t, label) in enumerate(zip(ids.tolist(), labels.tolist())):
            assert label == (IGNORE if t in masked or i in starts else t)
        text = sample["position_ids"][0].tolist()
        assert [text[i] for i in cu[:-1]] == [0] * (len(cu) - 1)
        assert all(text[i + 1] == text[i] + 1 for i in range(len(text) - 1) if i + 1 not in starts)
    only_web = PackedDataset(packed_qwen, vlm_tokenizer, masked_sources=["photos", "clips"])
    sources = {r["sequence_id"]: r["segments"] for r in pq.read_table(packed_qwen / "plan.parquet").to_pylist()}
    learned = 0
    for sample in only_web:
        for segment in sources[sample["sequence_id"]]:
            labels = sample["labels"][segment["offset"] : segment["offset"] + segment["length"]]
            if segment["source"] == "web":
                learned += int((labels != IGNORE).sum())
            else:
                assert (labels == IGNORE).all()
    assert learned > 0


@pytest.mark.parametrize("which", ["packed_qwen", "packed_qwen_cut"])
def test_mrope_positions_equal_the_models_own_for_each_document_alone(which, request, vlm_tokenizer):
    qwen_samples = list(PackedDataset(request.getfixturevalue(which), vlm_tokenizer))
    model = tiny_qwen(vlm_tokenizer)
    image_id, video_id = model.config.image_token_id, model.config.video_token_id
    checked = 0
    for sample in qwen_samples:
        for a, b, images, videos in documents(sample, image_id, video_id):
            ids = sample["input_ids"][a:b]
            if images is None and videos is None:
                assert (sample["position_ids"][:, a:b] == torch.arange(b - a)).all()
                continue
            types = torch.where(ids == image_id, 1, torch.where(ids == video_id, 2, 0))
            expected, _ = model.model.get_rope_index(
                ids[None], types[None], image_grid_thw=images and images[1], video_grid_thw=videos and videos[1]
            )
            assert torch.equal(sample["position_ids"][1:, a:b], expected[:, 0])
            checked += 1
    assert checked >= 6


def documents(sample, image_id, video_id):
    """Per document: its token range and its own (pixels, grids) of images and of videos (None when it has none)."""
    media = {}
    for kind, value, pixels, grids in (
        ("image", image_id, "pixel_values", "image_grid_thw"),
        ("video", video_id, "pixel_values_videos", "video_grid_thw"),
    ):
        if sample[grids] is None:
            media[kind] = ([], None, None)
            continue
        rows = np.r_[0, np.cumsum(sample[grids].prod(-1).numpy())]
        media[kind] = ([start for start, _ in runs(sample["input_ids"], value)], rows, (sample[pixels], sample[grids]))
    cu = sample["cu_seqlens"].tolist()
    for a, b in zip(cu[:-1], cu[1:]):
        own = []
        for kind in ("image", "video"):
            starts, rows, tensors = media[kind]
            first = sum(s < a for s in starts)
            last = sum(s < b for s in starts)
            if first == last:
                own.append(None)
                continue
            pixels, grids = tensors
            own.append((pixels[rows[first] : rows[last]], grids[first:last]))
        yield a, b, own[0], own[1]


def alone_inputs(sample, a, b, images, videos):
    inputs = {
        "input_ids": sample["input_ids"][None, a:b],
        "position_ids": sample["position_ids"][..., a:b].unsqueeze(-2),
    }
    inputs["use_cache"] = False
    if images is not None:
        inputs["pixel_values"], inputs["image_grid_thw"] = images
    if videos is not None:
        inputs["pixel_values_videos"], inputs["video_grid_thw"] = videos
    return inputs


def train_step(model, samples):
    """Forward and backward on a varlen batch holding images and videos: a finite loss that reaches the vision tower."""
    with_images = next(s for s in samples if s["image_grid_thw"] is not None)
    with_videos = next(s for s in samples if s["video_grid_thw"] is not None)
    batch = collate_varlen([with_images, with_videos])
    model.train()
    out = model(**model_inputs(batch))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    vision = [p.grad for n, p in model.named_parameters() if "vision" in n or "visual" in n]
    assert any(g is not None and g.abs().sum() > 0 for g in vision)
    model.eval()
    return batch


def assert_documents_stay_apart(model, samples, kinds=("image_grid_thw", "video_grid_thw")):
    """Each document's logits inside a packed sequence equal its logits alone (a sequence with media and text)."""
    image_id, video_id = model.config.image_token_id, model.config.video_token_id
    compared = 0
    with torch.no_grad():
        for kind in kinds:
            sample = next(s for s in samples if s[kind] is not None and len(s["cu_seqlens"]) > 2)
            packed = model(**model_inputs(collate_varlen([sample]))).logits[0]
            for a, b, images, videos in documents(sample, image_id, video_id):
                alone = model(**alone_inputs(sample, a, b, images, videos)).logits[0]
                torch.testing.assert_close(packed[a:b], alone, atol=1e-4, rtol=1e-4)
                compared += 1
    assert compared >= 2 * len(kinds)


def test_qwen2_vl_trains_on_loader_batches_and_documents_stay_apart(vlm_tokenizer, qwen_samples):
    model = tiny_qwen(vlm_tokenizer)
    batch = train_step(model, qwen_samples)
    assert_documents_stay_apart(model, qwen_samples)
    padded = collate_padded([qwen_samples[0], qwen_samples[1]], length=160)
    assert padded["input_ids"].shape == (2, 160) and padded["position_ids"].shape == (4, 2, 160)
    with torch.no_grad():
        flat = model(**model_inputs(collate_varlen([qwen_samples[0], qwen_samples[1]]))).loss
        assert torch.allclose(model(**model_inputs(padded)).loss, flat, atol=1e-5)
    assert batch["cu_seqlens"][-1] == batch["input_ids"].shape[1]


def test_qwen2_vl_eager_attention_keeps_documents_apart_too(vlm_tokenizer, qwen_samples):
    assert_documents_stay_apart(tiny_qwen(vlm_tokenizer, attn="eager"), qwen_samples, kinds=("image_grid_thw",))


def test_kimi_k25_trains_on_loader_batches_and_documents_stay_apart(vlm_tokenizer, kimi_samples):
    model = tiny_kimi(vlm_tokenizer, seed=0).eval()  # the demo's model: 2 layers, random weights
    train_step(model, kimi_samples)
    assert_documents_stay_apart(model, kimi_samples)


def test_a_different_tokenizer_is_refused(packed_qwen, tiny_tokenizer):
    with pytest.raises(ConfigError, match="is not the one .* was packed with"):
        PackedDataset(packed_qwen, tiny_tokenizer)


def test_a_media_item_whose_tokens_differ_from_the_plan_is_an_error_naming_it(packed_qwen, vlm_tokenizer, tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(packed_qwen, copy)
    plan = pq.read_table(copy / "plan.parquet")
    rows = plan.to_pylist()
    target = next(r for r in rows if any(m["kind"] == "image" for s in r["segments"] for m in s["media"]))
    segment = next(s for s in target["segments"] if s["media"])
    segment["media"][0]["width"] *= 3  # the processor now makes more tokens than the plan holds
    pq.write_table(type(plan).from_pylist(rows, schema=plan.schema), copy / "plan.parquet")
    with pytest.raises(MediaMismatch, match=f"sequence {target['sequence_id']}, record {segment['sample_id']}"):
        PackedDataset(copy, vlm_tokenizer, source="input").sequence(target["sequence_id"])
