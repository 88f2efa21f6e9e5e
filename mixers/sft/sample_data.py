"""A generated chat corpus in every input format, with planted problems: for the demo and the benchmark.

Plain chats (OpenAI messages), tool-use chats with JSON-schema tools, ShareGPT conversations with
``function_call``/``observation`` turns, and Alpaca rows in Parquet; planted among them: exact and
near-duplicate user turns, an image part, an ``<image>`` placeholder, a data URL, tool arguments
that are not JSON or break their schema, a result for a call never made, an unanswered call, an
empty answer, a chat that ends with the user, and copies of eval questions (written to ``eval.jsonl``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.pipelines.core.io import read_range, safe_name
from fusionforge.pipelines.demo_corpus import document, sentence, write_jsonl

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
}
CITIES = ("Paris", "Lagos", "Lima", "Osaka", "Oslo", "Quito", "Perth", "Dakar")


def make_chat_corpus(root: str | Path, seed: int = 0, n: int = 60) -> tuple[dict[str, str], str]:
    """Write the corpus under ``root``; return ``({source: path}, eval file path)``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    evals = [
        {"id": f"eval-{i}", "question": document(rng, "en", 2), "answer": str(rng.randint(1, 99))}
        for i in range(max(4, n // 10))
    ]
    write_jsonl(root / "eval.jsonl", evals)
    sources = {
        "chat": _chats(root / "chat.jsonl", rng, n, evals),
        "tools": _tool_chats(root / "tools.jsonl", rng, max(8, n // 2)),
        "sharegpt": _sharegpt(root / "sharegpt.jsonl", rng, max(6, n // 3)),
        "alpaca": _alpaca(root / "alpaca.parquet", rng, max(6, n // 3)),
    }
    return {k: str(v) for k, v in sources.items()}, str(root / "eval.jsonl")


def _chat(rng: random.Random, question: str, turns: int = 1) -> list[dict[str, Any]]:
    messages = [{"role": "system", "content": "You are a helpful assistant."}] if rng.random() < 0.5 else []
    for t in range(turns):
        messages.append({"role": "user", "content": question if t == 0 else sentence(rng, "en")})
        messages.append({"role": "assistant", "content": document(rng, "en", rng.randint(1, 3))})
    return messages


def _reask(rng: random.Random, messages: list[dict[str, Any]], change, first_only: bool = False) -> list[dict]:
    """The same user turns (changed by ``change``: all, or the first only) with new assistant answers."""
    out, changed = [], False
    for m in messages:
        content = m["content"]
        if m["role"] == "user" and not (first_only and changed):
            content, changed = change(content), True
        elif m["role"] == "assistant":
            content = document(rng, "en", 1)
        out.append({"role": m["role"], "content": content})
    return out


def _chats(path: Path, rng: random.Random, n: int, evals: list[dict[str, Any]]) -> Path:
    rows: list[dict[str, Any]] = [
        {"id": f"chat-{i:05d}", "messages": _chat(rng, document(rng, "en", 3), rng.randint(1, 3))} for i in range(n)
    ]
    for j in range(min(3, n)):  # the same questions again, shouted and re-spaced, with other answers
        rows.append(
            {
                "id": f"chat-exact-{j}",
                "messages": _reask(rng, rows[j]["messages"], lambda t: "  " + t.upper().replace(" ", "  ")),
            }
        )
    for j in range(min(3, n)):  # the same questions with a word of thanks at the end
        rows.append(
            {
                "id": f"chat-near-{j}",
                "messages": _reask(rng, rows[n - 1 - j]["messages"], lambda t: t + " Thank you.", first_only=True),
            }
        )
    for j, item in enumerate(evals[:2]):  # eval questions copied into training chats
        rows.append({"id": f"chat-leak-{j}", "messages": _chat(rng, f"Please help: {item['question']}")})
    image = {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}
    rows += [
        {
            "id": "chat-image-part",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]},
                {"role": "assistant", "content": "A cat on a sofa."},
            ],
        },
        {
            "id": "chat-placeholder",
            "messages": [
                {"role": "user", "content": "<image>\nDescribe the picture."},
                {"role": "assistant", "content": "A red bicycle by a wall."},
            ],
        },
        {
            "id": "chat-data-url",
            "messages": [
                {
                    "role": "user",
                    "content": "Read this: data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAf",
                },
                {"role": "assistant", "content": "It is a one-pixel image."},
            ],
        },
        {
            "id": "chat-empty-answer",
            "messages": [{"role": "user", "content": sentence(rng, "en")}, {"role": "assistant", "content": "  "}],
        },
        {"id": "chat-ends-with-user", "messages": [{"role": "user", "content": sentence(rng, "en")}]},
    ]
    write_jsonl(path, rows)
    return path


def _weather_call(call_id: str, arguments: str) -> dict[str, Any]:
    function = {"name": "get_weather", "arguments": arguments}
    call = {"id": call_id, "type": "function", "function": function}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def _tool_chats(path: Path, rng: random.Random, n: int) -> Path:
    rows = []
    for i in range(n):
        city, temp = rng.choice(CITIES), rng.randint(-5, 35)
        args = json.dumps({"city": city, "unit": "celsius"})
        rows.append(
            {
                "id": f"tools-{i:04d}",
                "tools": [WEATHER, ADD],
                "messages": [
                    {"role": "user", "content": f"What is the weather in {city} right now? {sentence(rng, 'en')}"},
                    _weather_call(f"call_{i}", args),
                    {
                        "role": "tool",
                        "tool_call_id": f"call_{i}",
                        "content": json.dumps({"temp_c": temp, "sky": "clear"}),
                    },
                    {"role": "assistant", "content": f"It is {temp} degrees Celsius and clear in {city}."},
                ],
            }
        )
    bad = [
        ("tools-bad-json", _weather_call("c1", '{"city": "Oslo",'), "c1"),
        ("tools-bad-schema", _weather_call("c2", '{"city": "Oslo", "unit": "kelvin"}'), "c2"),
        ("tools-unknown-id", _weather_call("c3", '{"city": "Oslo"}'), "c-never-made"),
    ]
    for record_id, call, answered in bad:
        rows.append(
            {
                "id": record_id,
                "tools": [WEATHER],
                "messages": [
                    {"role": "user", "content": f"Weather in Oslo? {sentence(rng, 'en')}"},
                    call,
                    {"role": "tool", "tool_call_id": answered, "content": '{"temp_c": 3}'},
                    {"role": "assistant", "content": "It is 3 degrees."},
                ],
            }
        )
    rows.append(
        {
            "id": "tools-unanswered",
            "tools": [WEATHER],
            "messages": [
                {"role": "user", "content": f"Weather in Lima? {sentence(rng, 'en')}"},
                _weather_call("c4", '{"city": "Lima"}'),
            ],
        }
    )
    write_jsonl(path, rows)
    return path


def _sharegpt(path: Path, rng: random.Random, n: int) -> Path:
    rows = []
    tools = json.dumps([ADD["function"]])
    for i in range(n):
        if i % 2:
            a, b = rng.randint(1, 500), rng.randint(1, 500)
            rows.append(
                {
                    "id": f"sharegpt-{i:04d}",
                    "tools": tools,
                    "conversations": [
                        {"from": "human", "value": f"Add {a} and {b}, please. {sentence(rng, 'en')}"},
                        {"from": "function_call", "value": json.dumps({"name": "add", "arguments": {"a": a, "b": b}})},
                        {"from": "observation", "value": json.dumps({"result": a + b})},
                        {"from": "gpt", "value": f"{a} + {b} = {a + b}."},
                    ],
                }
            )
        else:
            rows.append(
                {
                    "id": f"sharegpt-{i:04d}",
                    "conversations": [
                        {"from": "human", "value": document(rng, "en", 2)},
                        {"from": "gpt", "value": document(rng, "en", 2)},
                    ],
                }
            )
    rows.append(
        {
            "id": "sharegpt-llava",
            "image": "coco/000123.jpg",
            "conversations": [
                {"from": "human", "value": "<image>\nWhat animal is this?"},
                {"from": "gpt", "value": "A zebra."},
            ],
        }
    )
    write_jsonl(path, rows)
    return path


def _alpaca(path: Path, rng: random.Random, n: int) -> Path:
    rows = [
        {"instruction": f"Summarise: {document(rng, 'en', 2)}", "input": "", "output": sentence(rng, "en")}
        for _ in range(n)
    ]
    rows.append({"instruction": f"Translate: {sentence(rng, 'en')}", "input": "", "output": ""})
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def questions_from_shards(shard_dir: str | Path, dest: str | Path, source: str = "photos") -> str | None:
    """Counting questions for the images of an earlier ``shard`` output whose metadata knows the answer.

    The demo corpus's drawn photos carry ``color`` and ``count`` in their sidecars; each such image
    is copied out of its shard (one ranged read) next to a ``qa.jsonl`` that ``synth-vision-proxy``
    reads. Shapes may overlap in those drawings, so some answers the code finds will differ from
    the metadata: those trajectories are rejected, which is the point of verifying.
    """
    shard_dir, dest = Path(shard_dir), Path(dest)
    manifest = pq.read_table(shard_dir / "manifest.parquet", columns=["id", "source", "meta", "media"])
    rows = []
    for record in manifest.to_pylist():
        meta = json.loads(record["meta"] or "{}")
        if record["source"] != source or not {"color", "count"} <= set(meta) or len(record["media"]) != 1:
            continue
        item = record["media"][0]
        data = read_range(str(shard_dir / item["uri"]), item["offset"], item["size"])
        name = f"images/{safe_name(record['id'])}.{'jpg' if item['format'] == 'jpeg' else item['format']}"
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
        rows.append(
            {
                "id": record["id"],
                "image": name,
                "question": f"How many {meta['color']} shapes are there?",
                "answer": str(meta["count"]),
                "task": "count",
                "params": {"color": meta["color"]},
            }
        )
    if not rows:
        return None
    write_jsonl(dest / "qa.jsonl", rows)
    return str(dest / "qa.jsonl")
