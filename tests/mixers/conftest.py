"""A tiny byte-level BPE tokenizer trained in the test session (no downloads), with the VLM special tokens."""

from __future__ import annotations

import json

import pytest

SPECIALS = [
    "<|endoftext|>",
    "<|media_begin|>",
    "<|media_content|>",
    "<|media_end|>",
    "<|media_pad|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<image>",
]
CORPUS = [
    "the river runs under the old stone bridge",
    "a small house by the quiet market street",
    "children walk slowly across the field in the evening",
    "image video frame chunk timestamp",
    "00:00:02.000 00:01:30.500 12:34:56.789",
] * 20


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    """A folder with tokenizer.json and tokenizer_config.json (eos <|endoftext|>)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    from tokenizers import decoders

    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    return folder
