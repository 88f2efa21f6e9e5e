import json

import pyarrow as pa
import pytest

from fusionforge.mixers.sft import schema as C
from fusionforge.mixers.sft.parts import ROW
from fusionforge.mixers.sft.readers import parse_row
from fusionforge.mixers.sft.stages import CONVERSATION, SftParse
from fusionforge.mixers.sft.tokens import TokenCounter, render_chatml
from fusionforge.mixers.sft.vision import VisionScanner, count_vision_parts
from fusionforge.mixers.tokens.text import ESTIMATE
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def batch(rows):
    n = len(rows)
    return pa.table(
        {
            S.ID: [f"r{i}" for i in range(n)],
            S.INPUT_FILE: ["f.jsonl"] * n,
            S.INPUT_POSITION: list(range(n)),
            S.DROP_REASON: pa.nulls(n, pa.string()),
            S.ERROR: pa.nulls(n, pa.string()),
            ROW: [json.dumps(r) for r in rows],
        }
    )


VISION_ROWS = [
    {
        "messages": [
            {"role": "user", "content": "<image>\nWhat colour is the car?"},
            {"role": "assistant", "content": "Red."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "Describe <|vision_start|><|image_pad|><|vision_end|> please"},
            {"role": "assistant", "content": "A dog."},
        ]
    },
    {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is it?"},
                    {"type": "image_url", "image_url": {"url": "http://x/a.png"}},
                ],
            },
            {"role": "assistant", "content": "A cat."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": f"See data:image/png;base64,{PNG_B64}"},
            {"role": "assistant", "content": "A pixel."},
        ]
    },
    {"messages": [{"role": "user", "content": f"raw: {PNG_B64}"}, {"role": "assistant", "content": "A pixel."}]},
    {
        "image": "coco/1.jpg",
        "conversations": [{"from": "human", "value": "What animal?"}, {"from": "gpt", "value": "A zebra."}],
    },
    {
        "messages": [
            {"role": "user", "content": "Kimi <|media_start|>image<|media_content|><|media_pad|><|media_end|>"},
            {"role": "assistant", "content": "ok"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA"}}, "hi"]},
            {"role": "assistant", "content": "ok"},
        ]
    },
    {
        "caption": "<image> a dog",
        "messages": [{"role": "user", "content": "describe"}, {"role": "assistant", "content": "ok"}],
        "tools": [{"type": "function", "function": {"name": "f", "description": "see <image>"}}],
    },
]


def test_every_kind_of_vision_part_is_caught_and_rejected_with_a_reason():
    out = SftParse()(batch(VISION_ROWS))
    reasons = out.column(S.DROP_REASON).to_pylist()
    assert all(r and r.startswith("sft_parse_v1:vision_content:") for r in reasons), reasons
    assert "<image> in turn 1" in reasons[0]
    assert "image_url part in turn 1" in reasons[2]
    assert "row field 'image'" in reasons[5]
    assert "<image> in tool f" in reasons[8] and "<image> in the row's other fields" in reasons[8]
    assert out.column(S.stage_column("sft_parse_v1", "vision_parts")).to_pylist()[1] == 3


def test_plain_text_about_images_is_not_vision():
    rows = [
        {
            "messages": [
                {"role": "user", "content": "How do I resize an image in Pillow? Path: images/cat.png"},
                {"role": "assistant", "content": "Use Image.resize; an <img> tag is HTML."},
            ]
        }
    ]
    out = SftParse()(batch(rows))
    assert out.column(S.DROP_REASON).to_pylist() == [None]


def test_strip_vision_removes_every_part_and_marks_the_sample():
    out = SftParse(strip_vision=True)(batch(VISION_ROWS))
    assert out.column(S.DROP_REASON).to_pylist() == [None] * len(VISION_ROWS)
    scanner = VisionScanner()
    for text in out.column(CONVERSATION).to_pylist():
        conv = C.loads(text)
        assert conv.meta["vision_stripped"] >= 1
        assert count_vision_parts(C.output_row("x", "s", conv), scanner) == 0
    first = C.loads(out.column(CONVERSATION)[0].as_py())
    assert first.messages[0].content == "What colour is the car?"
    last = C.loads(out.column(CONVERSATION)[8].as_py())
    assert last.tools[0].description == "see" and last.meta["extra"] == {"caption": "a dog"}


def test_traces_in_names_cannot_be_stripped_and_are_rejected():
    row = {
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "<image>", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c", "content": "y"},
            {"role": "assistant", "content": "z"},
        ]
    }
    reason = SftParse(strip_vision=True)(batch([row])).column(S.DROP_REASON)[0].as_py()
    assert reason.startswith("sft_parse_v1:vision_content: 1 vision part(s) that cannot be stripped")


def test_placeholder_list_is_configurable():
    rows = [
        {"messages": [{"role": "user", "content": "<<PIXELS>> what is shown?"}, {"role": "assistant", "content": "x"}]}
    ]
    assert SftParse()(batch(rows)).column(S.DROP_REASON).to_pylist() == [None]
    custom = SftParse(placeholders=("<<PIXELS>>",))(batch(rows)).column(S.DROP_REASON).to_pylist()
    assert custom[0].startswith("sft_parse_v1:vision_content") and "<<PIXELS>>" in custom[0]


def test_count_vision_parts_on_output_rows():
    scanner = VisionScanner()
    assert count_vision_parts({"messages": [{"role": "user", "content": "hi"}]}, scanner) == 0
    assert count_vision_parts({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, scanner) == 1
    assert count_vision_parts({"images": ["a.png"], "messages": []}, scanner) == 1
    tool_call = {
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [{"function": {"name": "crop", "arguments": json.dumps({"image": "a.png"})}}],
            }
        ]
    }
    assert count_vision_parts(tool_call, scanner) == 0  # a file path handed to a tool is text, not pixels
    assert count_vision_parts({"meta": {"note": "<|image_pad|><|image_pad|>"}}, scanner) == 2


def test_real_tokenizer_counts_the_chatml_rendering(tokenizer_file, chat):
    from tokenizers import Tokenizer

    conv, _ = parse_row(chat())
    counter = TokenCounter(tokenizer_file)
    assert counter.method == "tokenizer:tokenizer.json"
    [(n, problem)] = counter.count([conv])
    expected = len(Tokenizer.from_file(tokenizer_file).encode(render_chatml(conv), add_special_tokens=False).ids)
    assert problem is None and n == expected
    text = render_chatml(conv)
    assert "<tool_call>" in text and '"get_weather"' in text and "# Tools" in text


def test_chat_template_folder_counts_what_the_template_renders(tokenizer_file, chat, tmp_path):
    from transformers import PreTrainedTokenizerFast

    template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content or '' }}"
        "{% for c in m.tool_calls or [] %}{{ c.function.name }}{{ c.function.arguments | tojson }}{% endfor %}"
        "<|im_end|>\n{% endfor %}"
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=tokenizer_file, bos_token="<|im_start|>", eos_token="<|im_end|>")
    tokenizer.chat_template = template
    tokenizer.save_pretrained(tmp_path / "tok")
    conv, _ = parse_row(chat())
    counter = TokenCounter(str(tmp_path / "tok"))
    assert counter.method == "chat_template"
    [(n, problem)] = counter.count([conv])
    reference = tokenizer.apply_chat_template(
        C.openai_messages(conv, arguments_as_text=False), tokenize=True, return_dict=False
    )
    assert problem is None and n == len(reference) > 20


def test_estimate_is_labelled_and_a_bad_path_fails_early(chat, tmp_path):
    conv, _ = parse_row(chat())
    counter = TokenCounter(None)
    assert counter.method == ESTIMATE
    [(n, _)] = counter.count([conv])
    assert n == -(-len(render_chatml(conv)) // 4)
    with pytest.raises(ConfigError, match="does not exist"):
        TokenCounter(str(tmp_path / "nope"))


def test_final_check_counts_vision_left_in_written_files(tmp_path):
    from fusionforge.mixers.sft.output import SetWriter, check_vision

    clean = parse_row(
        {
            "messages": [
                {
                    "role": "user",
                    "content": 'Explain the OpenAI vision API: messages=[{"type": "image_url", ...}] in Python',
                },
                {"role": "assistant", "content": "Pass a content list."},
            ]
        }
    )[0]
    arguments = json.dumps({"q": "<|media_pad|>"})
    call = {"id": "c", "type": "function", "function": {"name": "look", "arguments": arguments}}
    dirty = parse_row(
        {
            "tools": [{"type": "function", "function": {"name": "look", "description": "see <image>"}}],
            "messages": [
                {"role": "user", "content": "hi <|image_pad|>"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c", "content": "ok"},
                {"role": "assistant", "content": "done"},
            ],
        }
    )[0]
    dirty.meta["note"] = "[IMG]"
    writer = SetWriter(tmp_path)
    writer.write("train", C.output_row("a", "s", clean), 10)
    writer.write("val", C.output_row("b", "s", dirty), 10, copies=2)
    writer.close()
    counts = check_vision(tmp_path, VisionScanner())
    assert counts["train"] == 0
    per_row = count_vision_parts(C.output_row("b", "s", dirty), VisionScanner())
    assert per_row == 4 and counts["val"] == 2 * 2 * per_row  # two copies, in the JSONL and in the Parquet
