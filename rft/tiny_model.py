"""A tiny random-weight chat model built offline: for the demo and the tests, never for real data.

The tokenizer is a word-level one trained on the spot from generated arithmetic text (about 40
tokens: digits, operators, a few words, the chat markers), and the model a 2-layer OLMo-2 with
hidden size 64 and random weights (OLMo-2 because transformers loads its tokenizer as saved,
where a Qwen2 model type would swap in the byte-level Qwen2 tokenizer). With so small a
vocabulary a random model ends its answer (the ``<|im_end|>`` token) within a few dozen tokens
and, now and then, ends on the right digit, so an RFT run over it exercises every path (stop and
length, pass and fail, buckets) in seconds. Its "answers" are noise: it demonstrates plumbing,
not learning.
"""

from __future__ import annotations

import random
from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[UNK]"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def arithmetic_corpus(count: int = 200, seed: int = 0) -> list[str]:
    """Questions and answers over single digits, the text the tokenizer learns its words from."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        lines.append(f"user What is {a} + {b} ? assistant The answer is {a + b} .")
        lines.append(f"system Answer with a number : {a} - {b} = {a - b}")
    return lines


def build_tiny_model(folder: str | Path, seed: int = 0, hidden_size: int = 64, layers: int = 2) -> Path:
    """Write a tokenizer (with chat template) and a random-weight causal LM to ``folder``; return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Olmo2Config, Olmo2ForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    backend = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(cleanup=False)  # words joined by spaces, so "1 7" stays two numbers
    backend.train_from_iterator(arithmetic_corpus(seed=seed), trainers.WordLevelTrainer(special_tokens=SPECIAL))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="[UNK]",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Olmo2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=1024,
        eos_token_id=eos,
        pad_token_id=pad,
        bos_token_id=pad,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Olmo2ForCausalLM(config)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a 0.4 MB save needs no progress bar
    try:
        model.save_pretrained(folder)
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(folder)
    return folder
