"""A tiny corpus (odd-sized images, one 9-frame video, short texts), packed for Qwen2-VL and Kimi K2.5."""

from __future__ import annotations

import json
import random

import pytest

from fusionforge.mixers.packing.job import PackConfig, run_pack
from fusionforge.pipelines.core.settings import build_config
from fusionforge.pipelines.demo_corpus import document, draw_shapes, encode, make_video, write_jsonl
from fusionforge.pipelines.shard import ShardConfig, run_shard

# The special tokens of Qwen2-VL and Kimi K2.5 (images and, for Kimi, videos have their own placeholder)
SPECIALS = [
    "<|endoftext|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|media_begin|>",
    "<|media_content|>",
    "<|media_end|>",
    "<|media_pad|>",
    "<|kimi_k25_video_placeholder|>",
]
CORPUS = ["the river runs under the old stone bridge", "image video 00:00:02.000 12:34:56.789"] * 20
IMAGE_SIZES = [(64, 48), (57, 41), (48, 64), (90, 60), (33, 70)]


def train_tokenizer(folder, vocab_size=420):
    """A byte-level BPE trained on the spot with the VLMs' special tokens, eos <|endoftext|>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    return folder


@pytest.fixture(scope="session")
def vlm_tokenizer(tmp_path_factory):
    return train_tokenizer(tmp_path_factory.mktemp("vlm-tokenizer"))


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("training-corpus")
    rng = random.Random(3)
    photos = root / "photos"
    photos.mkdir()
    for i, size in enumerate(IMAGE_SIZES):
        image, caption, _ = draw_shapes(rng, size)
        (photos / f"img_{i:02d}.png").write_bytes(encode(image, "PNG"))
        (photos / f"img_{i:02d}.txt").write_text(caption)
    clips = root / "clips"
    clips.mkdir()
    make_video(clips / "clip.mp4", "testsrc", seconds=0.9, size="64x48", rate=10)  # 9 frames: an odd count
    (clips / "clip.txt").write_text("a test card with a moving counter")
    write_jsonl(root / "web.jsonl", [{"id": f"web-{i}", "text": document(rng, "en", 1)} for i in range(10)])
    out = root / "shards"
    inputs = (f"photos={photos}", f"clips={clips}", f"web={root / 'web.jsonl'}")
    run_shard(build_config(ShardConfig, {"inputs": inputs, "output": str(out), "shard_count": 3, "executor": "local"}))
    return out


def pack(shards, out, tokenizer, preset, **kwargs):
    settings = {"seq_len": 160, "vision_ratio": None, "window": 2, "executor": "local", **kwargs}
    run_pack(
        build_config(
            PackConfig,
            {
                "input": str(shards),
                "output": str(out),
                "tokenizer": str(tokenizer),
                "vision_preset": preset,
                **settings,
            },
        )
    )
    return out


QWEN_OVERRIDES = {"video_min_pixels": 28 * 28 * 4, "video_max_pixels": 28 * 28 * 8}


@pytest.fixture(scope="session")
def packed_qwen(tiny_shards, vlm_tokenizer, tmp_path_factory):
    """Qwen2-VL, the video cut into chunk groups of at most 12 tokens, materialized (to compare ids)."""
    out = tmp_path_factory.mktemp("packed") / "qwen"
    return pack(
        tiny_shards,
        out,
        vlm_tokenizer,
        "qwen2-vl",
        preset_overrides=QWEN_OVERRIDES,
        video_group_tokens=12,
        materialize=True,
    )


@pytest.fixture(scope="session")
def packed_qwen_cut(tiny_shards, vlm_tokenizer, tmp_path_factory):
    """Qwen2-VL at L=32: texts and the video cut across sequences (segments that start inside a record)."""
    out = tmp_path_factory.mktemp("packed") / "qwen-cut"
    return pack(
        tiny_shards,
        out,
        vlm_tokenizer,
        "qwen2-vl",
        seq_len=32,
        preset_overrides=QWEN_OVERRIDES,
        video_group_tokens=12,
        materialize=True,
    )


@pytest.fixture(scope="session")
def packed_kimi(tiny_shards, vlm_tokenizer, tmp_path_factory):
    return pack(tiny_shards, tmp_path_factory.mktemp("packed") / "kimi", vlm_tokenizer, "kimi-k25", materialize=True)


CAPPED_OVERRIDES = {
    "video_min_pixels": 28 * 28 * 2,
    "video_max_pixels": 28 * 28 * 16,
    "cap_pixels_per_frame": True,
    "max_video_tokens": 10,  # the 9-frame clip: 28x28 per frame; 4 of its frames alone would be capped at 56x56
}


@pytest.fixture(scope="session")
def packed_qwen_capped(tiny_shards, vlm_tokenizer, tmp_path_factory):
    """Qwen2-VL with cap_pixels_per_frame, the video in chunk groups of 2 chunks (4 frames)."""
    out = tmp_path_factory.mktemp("packed") / "qwen-capped"
    return pack(
        tiny_shards,
        out,
        vlm_tokenizer,
        "qwen2-vl",
        preset_overrides=CAPPED_OVERRIDES,
        video_group_tokens=4,
        materialize=True,
    )
