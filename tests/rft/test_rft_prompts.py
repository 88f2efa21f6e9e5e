"""Prompt files: questions and messages, images as data URLs out and file references back, bad rows with reasons."""

import base64
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.rft.prompts import load_prompts


@pytest.fixture
def folder(tmp_path):
    Image.new("RGB", (40, 30), "red").save(tmp_path / "red.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return tmp_path


def _write(folder, rows, name="prompts.jsonl"):
    path = folder / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_question_with_an_image(folder):
    path = _write(
        folder,
        [
            {
                "id": 1,
                "question": "Where is the box?",
                "images": ["red.png"],
                "answer": [1, 2, 3, 4],
                "task": "bbox",
                "source": "unit",
            }
        ],
    )
    (prompt,), invalid = load_prompts(path)
    assert invalid == [] and prompt.id == "1" and prompt.metadata == {"source": "unit"}
    sent = prompt.request_messages("Be brief.")
    assert sent[0] == {"role": "system", "content": "Be brief."}
    image_part, text_part = sent[1]["content"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == (folder / "red.png").read_bytes()
    assert text_part == {"type": "text", "text": "Where is the box?"}
    stored = prompt.sft_messages()
    assert stored[0]["content"][0]["image_url"]["url"] == (folder / "red.png").resolve().as_uri()
    assert prompt.verify_options() == {"image_size": [40, 30]}


def test_messages_with_image_parts_in_both_forms(folder):
    messages = [
        {"role": "system", "content": "You count."},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "red.png"},
                {"type": "image_url", "image_url": {"url": f"file://{folder}/red.png"}},
                {"type": "text", "text": "How many?"},
            ],
        },
    ]
    (prompt,), _ = load_prompts(_write(folder, [{"id": "m", "messages": messages, "answer": 2, "task": "count"}]))
    assert prompt.images == (str((folder / "red.png").resolve()),) * 2
    assert prompt.request_messages("ignored: the prompt has a system message")[0]["content"] == "You count."


def test_bad_rows_become_invalid_prompts_with_reasons(folder):
    rows = [
        {"id": "ok", "question": "2+2?", "answer": "4", "task": "math"},
        '{"id": "broken json"',
        {"question": "no id", "answer": 1, "task": "count"},
        {"id": "ok", "question": "again", "answer": "4", "task": "math"},
        {"id": "t", "question": "?", "answer": "4", "task": "poetry"},
        {"id": "a", "question": "?", "task": "math"},
        {"id": "q", "answer": "4", "task": "math"},
        {"id": "img", "question": "?", "images": ["missing.png"], "answer": 1, "task": "count"},
        {"id": "bad", "question": "?", "images": ["broken.png"], "answer": 1, "task": "count"},
        {"id": "web", "question": "?", "images": ["https://example.com/x.png"], "answer": 1, "task": "count"},
        {
            "id": "last",
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
            "answer": "x",
            "task": "exact",
        },
        [1, 2],
    ]
    prompts, invalid = load_prompts(_write(folder, rows))
    assert [p.id for p in prompts] == ["ok"]
    reasons = {bad.id: bad.reason.split(":")[0] for bad in invalid}
    assert reasons == {
        "prompts.jsonl:2": "malformed_json",
        "prompts.jsonl:3": "missing_id",
        "prompts.jsonl:4": "duplicate_id",
        "t": "unknown_task",
        "a": "missing_answer",
        "q": "missing_prompt",
        "img": "missing_image",
        "bad": "bad_image",
        "web": "remote_image",
        "last": "bad_messages",
        "prompts.jsonl:12": "not_an_object",
    }


def test_verifier_override_and_parquet_input(folder):
    table = pa.table({"id": ["a", "b"], "question": ["x?", "y?"], "answer": ["1", "2"]})
    pq.write_table(table, folder / "p.parquet")
    prompts, invalid = load_prompts(folder / "p.parquet", task_override="exact")
    assert [p.task for p in prompts] == ["exact", "exact"] and invalid == []
    with pytest.raises(ConfigError, match="unknown verifier"):
        load_prompts(folder / "p.parquet", task_override="nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_prompts(folder / "missing.jsonl")


def test_a_bad_byte_deep_nesting_or_a_huge_number_fails_one_prompt_and_keeps_the_rest(folder):
    good = [json.dumps({"id": f"g{i}", "question": "1+1?", "answer": "2", "task": "math"}).encode() for i in range(3)]
    lines = [
        good[0],
        b'{"id": "latin1", "question": "caf\xe9?", "answer": "x", "task": "exact"}',
        good[1],
        b'{"id": "deep", "question": "?", "answer": ' + b"[" * 100_000 + b"]" * 100_000 + b', "task": "exact"}',
        b'{"id": "big", "question": "?", "answer": ' + b"9" * 5000 + b', "task": "exact"}',
        b'{"id": "odd", "question": "?", "answer": 1, "task": "count", "metadata": [1, 2]}',
        good[2],
    ]
    (folder / "prompts.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    prompts, invalid = load_prompts(folder / "prompts.jsonl")
    assert [p.id for p in prompts] == ["g0", "g1", "g2"]
    assert {bad.id: bad.reason.split(":")[0] for bad in invalid} == {
        "prompts.jsonl:2": "invalid_encoding",
        "prompts.jsonl:4": "nesting_too_deep",
        "prompts.jsonl:5": "number_too_large",
        "odd": "wrong_type",
    }


def test_a_parquet_prompt_file_with_a_broken_footer_is_one_invalid_entry(folder):
    pq.write_table(
        pa.table({"id": ["a"], "question": ["x?"], "answer": ["1"], "task": ["exact"]}), folder / "p.parquet"
    )
    (folder / "p.parquet").write_bytes((folder / "p.parquet").read_bytes()[:-10])
    prompts, (invalid,) = load_prompts(folder / "p.parquet")
    assert prompts == [] and invalid.id == "p.parquet" and invalid.reason.startswith("unreadable_file")
