import base64
import json

import pyarrow as pa
import pytest
from tokenizers import Tokenizer

from fusionforge.mixers.tokens.text import ESTIMATE, TextCounter, TextTokens
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError


def test_hf_tokenizer_file_and_folder_count_like_the_tokenizer(tiny_tokenizer):
    texts = ["the river runs under the bridge", "", None, "ünïcödé and emoji 🎉", "x" * 500]
    reference = Tokenizer.from_file(str(tiny_tokenizer / "tokenizer.json"))
    expected = [len(reference.encode(t or "", add_special_tokens=False).ids) for t in texts]
    for path in (tiny_tokenizer, tiny_tokenizer / "tokenizer.json"):
        counter = TextCounter(path)
        assert not counter.estimated and counter.method == "tokenizer:tokenizer.json"
        assert counter.count_batch(texts) == expected
        assert expected[0] < len(texts[0])  # real BPE merges, not characters
    counter = TextCounter(tiny_tokenizer)
    assert counter.eos_id == reference.token_to_id("<|endoftext|>")
    assert counter.encode_markup("<|media_begin|>image<|media_content|>")[0] == reference.token_to_id("<|media_begin|>")


def test_tiktoken_file_with_special_tokens_beside_it(tmp_path):
    ranks = {bytes([i]): i for i in range(256)}
    for token in (b"th", b"the", b" the"):
        ranks[token] = len(ranks)
    path = tmp_path / "tiny.tiktoken"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items()))
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "eos_token": "[EOS]",
                "added_tokens_decoder": {"300": {"content": "[EOS]"}, "301": {"content": "<|media_pad|>"}},
            }
        )
    )
    counter = TextCounter(path)
    assert counter.method == "tokenizer:tiny.tiktoken"
    assert counter.count_batch(["the the", "xyz", ""]) == [2, 3, 0]  # "the" + " the"; three unmerged bytes
    assert counter.eos_id == 300 and counter.token_id("<|media_pad|>") == 301
    assert counter.encode_markup("[EOS]the") == [300, 257]
    with pytest.raises(ConfigError, match="tiktoken"):
        bad = tmp_path / "bad.tiktoken"
        bad.write_text("not base64 at all\n")
        TextCounter(bad)


def test_estimate_is_labelled_and_refuses_ids():
    counter = TextCounter(None)
    assert counter.estimated and counter.method == ESTIMATE == "estimate:chars/4"
    assert counter.count_batch(["abcd", "abcde", None, ""]) == [1, 2, 0, 0]
    with pytest.raises(ConfigError, match="real tokenizer"):
        counter.encode_batch(["x"])
    with pytest.raises(ConfigError, match="does not exist"):
        TextCounter("/nonexistent/tokenizer.json")


def test_stage_counts_interleaved_parts_separately(tiny_tokenizer):
    segments = [
        {"type": "text", "text": "the river", "media_index": None},
        {"type": "image", "text": None, "media_index": 0},
        {"type": "text", "text": "under the old stone bridge", "media_index": None},
    ]
    table = S.validate(
        pa.Table.from_pylist(
            [
                {
                    "id": "a",
                    "source": "s",
                    "modality": "text",
                    "text": "the quiet market",
                    "input_file": "f",
                    "input_position": 0,
                },
                {
                    "id": "b",
                    "source": "s",
                    "modality": "interleaved",
                    "text": "the river\n\nunder the old stone bridge",
                    "segments": segments,
                    "input_file": "f",
                    "input_position": 1,
                },
                {"id": "c", "source": "s", "modality": "image", "text": None, "input_file": "f", "input_position": 2},
            ],
            schema=S.RECORD_SCHEMA,
        )
    )
    out = TextTokens(str(tiny_tokenizer))(table)
    counter = TextCounter(tiny_tokenizer)
    parts = out.column("mixers_text_tokens_v1__part_tokens").to_pylist()
    assert parts == [
        counter.count_batch(["the quiet market"]),
        counter.count_batch(["the river", "under the old stone bridge"]),
        [],
    ]
    assert out.column(S.TEXT_TOKENS).to_pylist() == [sum(p) for p in parts]
    assert set(out.column("mixers_text_tokens_v1__method").to_pylist()) == {"tokenizer:tokenizer.json"}
    assert out.num_rows == 3
