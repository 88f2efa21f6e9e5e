"""Fixtures of the SFT tests: a tokenizer trained here, a JSONL writer, and chat rows in every format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="session")
def tokenizer_file(tmp_path_factory) -> str:
    """A byte-level BPE tokenizer (vocab 400) trained on a few sentences, saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [
        "What is the weather in Paris today? It is sunny and warm in the afternoon.",
        "The assistant calls a tool with JSON arguments and reads the result.",
        "user assistant system tool call result city unit celsius fahrenheit",
    ] * 20
    tokenizer.train_from_iterator(corpus, trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tokenizer.save(str(path))
    return str(path)


@pytest.fixture
def write_jsonl():
    def write(path: Path, rows: list) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
        return str(path)

    return write


def weather_chat(
    call_args: str = '{"city": "Paris", "unit": "celsius"}',
    result_id: str = "call_1",
    question: str = "What is the weather in Paris?",
) -> dict:
    """A valid OpenAI tool-use conversation (change the arguments or the answered id to break it)."""
    return {
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": question},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": call_args}}
                ],
            },
            {"role": "tool", "tool_call_id": result_id, "content": '{"temp_c": 21, "sky": "clear"}'},
            {"role": "assistant", "content": "It is 21 degrees Celsius and clear in Paris."},
        ],
    }


@pytest.fixture
def chat():
    return weather_chat
