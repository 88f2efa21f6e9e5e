import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fusionforge.mixers.sft import parts
from fusionforge.mixers.sft.build import run_build
from fusionforge.mixers.sft.config import BuildConfig
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import build_config

QUESTIONS = [
    "How do I reverse a linked list in place without using extra memory for a second list?",
    "What are the main differences between a process and a thread on a modern operating system?",
    "Can you explain how a hash map handles collisions when two keys land in the same bucket?",
    "Why does floating point addition sometimes give results like 0.30000000000000004 in Python?",
    "Write a short poem about autumn leaves falling on a quiet river near an old stone bridge.",
    "What is the difference between supervised learning and reinforcement learning in simple terms?",
]
EVAL_QUESTION = (
    "A train leaves the station at nine in the morning travelling at sixty miles per hour; how far has it gone by noon?"
)


def openai_row(i, question, answer=None):
    return {
        "id": f"o{i}",
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer or f"Answer number {i}: it depends."},
        ],
    }


@pytest.fixture
def inputs(tmp_path, write_jsonl, chat):
    rows = [openai_row(i, q) for i, q in enumerate(QUESTIONS)]
    rows += [
        openai_row(10, "  " + QUESTIONS[0].upper() + "  ", "A different answer."),  # exact duplicate user turn
        openai_row(11, QUESTIONS[1] + " Thanks!"),  # near duplicate
        openai_row(12, f"Quick one: {EVAL_QUESTION}"),  # contamination
        openai_row(13, "<image>\nWhat breed is this dog?", "A beagle."),  # vision placeholder
        {"id": "t1", **chat()},
        {"id": "t2", **chat(call_args='{"city": "Paris", "unit": "kelvin"}', question="Weather in Paris, in kelvin?")},
        {"id": "o14", "messages": [{"role": "user", "content": "Are you there?"}]},
        "{this line is not json",
    ]
    chats = write_jsonl(tmp_path / "in" / "chats.jsonl", rows)
    sharegpt = write_jsonl(
        tmp_path / "in" / "sharegpt.jsonl",
        [
            {
                "id": "s1",
                "conversations": [
                    {"from": "human", "value": "Tell me a fun fact about octopuses, please."},
                    {"from": "gpt", "value": "Octopuses have three hearts."},
                ],
            },
            {
                "id": "s2",
                "conversations": [
                    {"from": "human", "value": "Hello there, who won the match last night?"},
                    {"from": "human", "value": "Hello?"},
                ],
            },
        ],
    )
    alpaca = tmp_path / "in" / "alpaca.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "instruction": "Summarise the plot of Hamlet in two sentences for a school report.",
                    "input": "",
                    "output": "A prince avenges his father. Almost everyone dies.",
                },
                {"instruction": "Give an antonym of 'ancient'.", "input": "", "output": ""},
            ]
        ),
        alpaca,
    )
    evals = write_jsonl(tmp_path / "in" / "eval.jsonl", [{"id": "train-q", "question": EVAL_QUESTION, "answer": "180"}])
    return {"chat": chats, "share": sharegpt, "alpaca": str(alpaca), "eval": evals}


def config(inputs, out, **overrides):
    base = {
        "inputs": (f"chat={inputs['chat']}", f"share={inputs['share']}", f"alpaca={inputs['alpaca']}"),
        "output": str(out),
        "decontaminate": (f"arith={inputs['eval']}",),
        "executor": "local",
        "val_fraction": 0.0,
    }
    return build_config(BuildConfig, {**base, **overrides})


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_build_writes_a_validated_deduplicated_decontaminated_zero_vision_set(inputs, tmp_path):
    out = tmp_path / "sft"
    report = run_build(config(inputs, out))
    train = read_jsonl(out / "train.jsonl")
    kept = {row["id"] for row in train}
    assert kept == {
        "chat/o0",
        "chat/o1",
        "chat/o2",
        "chat/o3",
        "chat/o4",
        "chat/o5",
        "chat/t1",
        "share/s1",
        "alpaca/alpaca.parquet#0",
    }
    reasons = {r["id"]: r["reason"] for r in read_jsonl(out / "rejected.jsonl")}
    assert reasons["chat/o10"] == "sft_dedup_v1:exact_dup_of: chat/o0"
    assert reasons["chat/o11"] == "sft_dedup_v1:near_dup_of: chat/o1"
    assert reasons["chat/o12"] == "sft_decontaminate_v1:ngram_overlap: arith/train-q"
    assert reasons["chat/o13"].startswith("sft_parse_v1:vision_content: 1 vision part(s): <image> in turn 1")
    assert reasons["chat/t2"].startswith("sft_validate_v2:tool_arguments_schema: get_weather")
    assert reasons["chat/o14"].startswith("sft_validate_v2:not_ending_with_assistant")
    assert reasons["chat/chats.jsonl#14"].startswith("read:malformed_json")
    assert reasons["share/s2"].startswith("sft_validate_v2:role_order")
    assert reasons["alpaca/alpaca.parquet#1"].startswith("sft_validate_v2:empty_assistant_turn")
    assert read_jsonl(out / "decontamination.jsonl") == [
        {
            "id": "chat/o12",
            "source": "chat",
            "eval_set": "arith",
            "eval_sample": "train-q",
            "ngram": "a train leaves the station at nine in the morning travelling at sixty",
        }
    ]
    ledger = pq.read_table(out / "ledger.parquet")
    assert ledger.num_rows == report["inputs"] == 18 == report["kept"] + report["dropped"] + report["failed"]
    assert report["vision"]["check"].startswith("0 vision parts") and report["vision"]["output_vision_parts"] == 0
    assert report["dedup"] == {"exact": 1, "near": 1, "near_threshold": 0.8}
    assert report["decontamination"]["eval_sets"]["arith"]["matched_conversations"] == 1
    assert report["by_source"]["chat"]["tool_use_share"] == pytest.approx(1 / 7, abs=1e-3)
    assert report["by_source"]["share"]["reasons"] == {"sft_validate_v2:role_order": 1}
    assert report["by_source"]["alpaca"]["kept"] == 1 and report["by_source"]["chat"]["inputs"] == 14
    assert report["tokens"]["method"].startswith("estimate")
    tool_row = next(row for row in train if row["id"] == "chat/t1")
    assert tool_row["tools"][0]["function"]["name"] == "get_weather"
    assert json.loads(tool_row["messages"][2]["tool_calls"][0]["function"]["arguments"])["city"] == "Paris"
    parquet = pq.read_table(out / "train.parquet").to_pylist()
    assert [row["id"] for row in parquet] == [row["id"] for row in train]
    tool_parquet = next(row for row in parquet if row["id"] == "chat/t1")
    assert tool_parquet["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert tool_parquet["n_tool_calls"] == 1 and json.loads(tool_parquet["tools"])[0]["type"] == "function"
    assert (out / "_SUCCESS").exists() and not (out / parts.PARTS).exists()


def test_strip_vision_keeps_the_sample_marked(inputs, tmp_path):
    out = tmp_path / "sft"
    report = run_build(config(inputs, out, strip_vision=True))
    row = next(r for r in read_jsonl(out / "train.jsonl") if r["id"] == "chat/o13")
    assert row["messages"][0]["content"] == "What breed is this dog?" and row["meta"]["vision_stripped"] == 1
    assert report["vision"]["stripped_conversations"] == 1 and report["vision"]["output_vision_parts"] == 0


def test_real_tokenizer_limits_length(inputs, tmp_path, tokenizer_file):
    out = tmp_path / "sft"
    report = run_build(config(inputs, out, tokenizer=tokenizer_file, max_tokens=150))
    reasons = {r["id"]: r["reason"] for r in read_jsonl(out / "rejected.jsonl")}
    too_long = [i for i, r in reasons.items() if r.startswith("sft_validate_v2:too_long")]
    assert "chat/t1" in too_long and report["tokens"]["method"] == "tokenizer:tokenizer.json"
    assert 0 < report["tokens"]["max"] <= 150
    parquet = pq.read_table(out / "train.parquet", columns=["n_tokens"]).column("n_tokens").to_pylist()
    assert parquet and max(parquet) <= 150


def test_split_and_mixture(inputs, tmp_path):
    mix = tmp_path / "mix.yaml"
    mix.write_text(
        "max_epochs: 1\nsources:\n  chat: {proportion: 0.5}\n  share: {proportion: 0.25, max_epochs: 4}\n"
        "  alpaca: {proportion: 0.25, max_epochs: 4}\n"
    )
    out = tmp_path / "sft"
    report = run_build(config(inputs, out, mixture=str(mix), val_fraction=0.3, seed=3))
    val = read_jsonl(out / "val.jsonl")
    train = read_jsonl(out / "train.jsonl")
    assert report["splits"]["val"]["conversations"] == len(val) > 0
    assert not {r["id"] for r in val} & {r["id"] for r in train}
    shares = {s: e["realised_share"] for s, e in report["mixture"]["sources"].items()}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert report["splits"]["train"]["rows"] == len(train) == pq.read_table(out / "train.parquet").num_rows
    again = tmp_path / "again"
    run_build(config(inputs, again, mixture=str(mix), val_fraction=0.3, seed=3))
    assert (again / "train.jsonl").read_bytes() == (out / "train.jsonl").read_bytes()


def test_bad_settings_fail_before_any_work(inputs, tmp_path):
    with pytest.raises(ConfigError, match="val_fraction"):
        run_build(config(inputs, tmp_path / "a", val_fraction=1.5))
    mix = tmp_path / "mix.yaml"
    mix.write_text("sources:\n  chat: {proportion: 1}\n  books: {proportion: 1}\n")
    with pytest.raises(ConfigError, match="not among the inputs"):
        run_build(config(inputs, tmp_path / "b", mixture=str(mix)))
    with pytest.raises(ConfigError, match="tokenizer"):
        run_build(config(inputs, tmp_path / "c", tokenizer=str(tmp_path / "missing.json")))
    with pytest.raises(ConfigError, match=r"--max-tokens .* give --tokenizer PATH"):  # no length check by estimate
        run_build(config(inputs, tmp_path / "d", max_tokens=150))
    assert not any((tmp_path / name).exists() for name in "abd")


def test_a_crashed_run_resumes_to_the_same_outputs(inputs, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    run_build(config(inputs, clean, partition_mb=0.001))
    crashed = tmp_path / "crashed"
    real_write = parts.write_part
    calls = []

    def dies_on_the_third_partition(out_dir, partition, table):
        calls.append(partition)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real_write(out_dir, partition, table)

    monkeypatch.setattr(parts, "write_part", dies_on_the_third_partition)
    with pytest.raises(KeyboardInterrupt):
        run_build(config(inputs, crashed, partition_mb=0.001))
    monkeypatch.setattr(parts, "write_part", real_write)
    assert len(list((crashed / "_markers").glob("*.done.json"))) == 2 and not (crashed / "train.jsonl").exists()
    with pytest.raises(ConfigError, match="--resume"):
        run_build(config(inputs, crashed, partition_mb=0.001))
    report = run_build(config(inputs, crashed, partition_mb=0.001, resume=True))
    for name in ("train.jsonl", "val.jsonl", "rejected.jsonl", "decontamination.jsonl"):
        assert (crashed / name).read_bytes() == (clean / name).read_bytes(), name
    assert pq.read_table(crashed / "ledger.parquet").equals(pq.read_table(clean / "ledger.parquet"))
    assert report["inputs"] == 18
    assert run_build(config(inputs, crashed, partition_mb=0.001, resume=True)) == report


@pytest.mark.ray
def test_ray_executor_gives_the_same_set(ray_session, inputs, tmp_path, tokenizer_file):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    run_build(config(inputs, local, tokenizer=tokenizer_file))
    run_build(config(inputs, on_ray, tokenizer=tokenizer_file, executor="ray"))
    for name in ("train.jsonl", "rejected.jsonl", "decontamination.jsonl"):
        assert (on_ray / name).read_bytes() == (local / name).read_bytes(), name


def test_ledger_and_report_name_the_same_step(inputs, tmp_path):
    report = run_build(config(inputs, tmp_path / "sft"))
    steps = set(pq.read_table(tmp_path / "sft" / "ledger.parquet", columns=["step"]).column("step").to_pylist())
    assert steps == {report["step"]} == {"sft_build"}
