"""The demo's tokenizer and its last pretraining step: one training step of a tiny model on the packed output.

Nothing is downloaded: the tokenizer is a byte-level BPE trained on the spot on the filtered texts,
with Kimi K2.5's special tokens (its media wrappers and placeholders, ``<|endoftext|>`` as EOS), so
``pack`` counts real token ids; the model is a 2-layer Kimi K2.5 with random weights built from a
small config. The step shows the loader's batches go into a transformers VLM as they are (images and
video chunks through its vision tower); the loss of random weights is about ln(vocabulary size).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console

SPECIALS = [
    "<|endoftext|>",
    "<|media_begin|>",
    "<|media_content|>",
    "<|media_end|>",
    "<|media_pad|>",
    "<|kimi_k25_video_placeholder|>",
]
VOCAB_SIZE = 2048


def train_tokenizer(manifest_folder: str, folder: Path) -> Path:
    """A byte-level BPE learnt from the texts of ``manifest_folder``'s records; return its folder."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = pq.read_table(Path(manifest_folder) / "manifest.parquet", columns=["text"]).column("text")
    texts = pc.drop_null(texts).to_pylist()
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*texts, "image video 00:00:01.500"], trainer)  # wrapper words, timestamps
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    return folder


def tiny_kimi(tokenizer: Path, seed: int):
    """A 2-layer Kimi K2.5 (DeepSeek-V3 text with a small MoE, a 1-layer MoonViT) with random weights."""
    import torch
    from tokenizers import Tokenizer
    from transformers.models.kimi_k25.configuration_kimi_k25 import Kimi_K25Config
    from transformers.models.kimi_k25.modeling_kimi_k25 import Kimi_K25ForConditionalGeneration

    vocab = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    ids = {name: vocab.token_to_id(name) for name in SPECIALS}
    text = {
        "model_type": "deepseek_v3",
        "vocab_size": vocab.get_vocab_size(),
        "hidden_size": 64,
        "intermediate_size": 128,
        "moe_intermediate_size": 32,
        "num_hidden_layers": 2,
        "first_k_dense_replace": 1,
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "n_shared_experts": 1,
        "n_group": 1,
        "topk_group": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "q_lora_rank": None,
        "kv_lora_rank": 16,
        "qk_rope_head_dim": 8,
        "qk_nope_head_dim": 8,
        "v_head_dim": 16,
        "max_position_embeddings": 4096,
        "bos_token_id": None,
        "eos_token_id": ids["<|endoftext|>"],
    }
    vision = {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "patch_size": 14,
        "pos_emb_height": 64,
        "pos_emb_width": 64,
    }
    config = Kimi_K25Config(
        text_config=text,
        vision_config=vision,
        projection_hidden_size=32,
        image_token_id=ids["<|media_pad|>"],
        video_token_id=ids["<|kimi_k25_video_placeholder|>"],
        vision_start_token_id=ids["<|media_begin|>"],
        vision_end_token_id=ids["<|media_end|>"],
    )
    config._attn_implementation = config.text_config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    return Kimi_K25ForConditionalGeneration(config)


def training_step(console: Console, packed: str, tokenizer: Path, seed: int) -> float:
    """One optimizer step of the tiny model on the loader's first sequence holding an image; print and return the loss.

    One 2,048-token sequence: the tiny model's attention and MoE cost grows fast with the batch on a CPU.
    """
    import torch

    from fusionforge.mixers.training.collate import model_inputs
    from fusionforge.mixers.training.dataset import PackedDataset

    started = time.monotonic()
    batch = next(b for b in PackedDataset(packed, tokenizer, batch_size=1) if b["pixel_values"] is not None)
    model = tiny_kimi(tokenizer, seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model(**model_inputs(batch)).loss
    loss.backward()
    optimizer.step()
    media = _count(len(batch["image_grid_thw"]), "image")
    if batch["video_grid_thw"] is not None:
        media += ", " + _count(len(batch["video_grid_thw"]), "video chunk group")
    console.print(
        f"[bold]training step[/] tiny random-weight Kimi K2.5 on sequence {batch['sequence_ids'][0]} of {packed} "
        f"({batch['input_ids'].shape[1]:,} tokens, {media}): loss {loss.item():.4f} "
        f"({time.monotonic() - started:.1f} s)"
    )
    return float(loss.item())


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")
