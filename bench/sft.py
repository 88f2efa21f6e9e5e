"""SFT set throughput: ``fusionforge sft build`` versus the script a user would otherwise write, same data, same run.

Conversations/s through validation (structure, tool arguments against their JSON schemas, token
length by a real tokenizer), exact + near-duplicate removal on the user turns, and 13-gram
decontamination against an eval file. The reference is the usual hand-written pipeline:
``json.loads`` per line, ``jsonschema.validate`` per tool call, ``tokenizers`` per conversation,
a set of normalised user texts, datasketch ``MinHash`` (per-shingle ``update``) into a
``MinHashLSH`` (threshold 0.8, 128 permutations), and a Python set of 13-word tuples for the eval
n-grams. fusionforge also writes train/val JSONL + Parquet, the ledger, rejected.jsonl and the report.

    python bench/sft.py --conversations 20000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from fusionforge.pipelines.core.settings import RunSettings


def train_tokenizer(path: Path) -> str:
    """A byte-level BPE (vocab 8k) trained on generated English, saved as tokenizer.json."""
    import random

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from fusionforge.pipelines.demo_corpus import document

    rng = random.Random(0)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=8000,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.train_from_iterator([document(rng, "en") for _ in range(3000)], trainer)
    tokenizer.save(str(path))
    return str(path)


def reference(files: list[str], eval_file: str, tokenizer_path: str, max_tokens: int) -> dict[str, int]:
    """The hand-written pipeline; returns its counts (kept, invalid, duplicates, contaminated)."""
    import jsonschema
    import pyarrow.parquet as pq
    from datasketch import MinHash, MinHashLSH
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_path)
    words = re.compile(r"\w+")

    def grams(text: str, n: int = 13) -> set[tuple[str, ...]]:
        tokens = words.findall(unicodedata.normalize("NFKC", text).casefold())
        return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}

    eval_grams: set[tuple[str, ...]] = set()
    with open(eval_file, encoding="utf-8") as handle:
        for line in handle:
            eval_grams |= grams(json.loads(line)["question"])
    rows = []
    for file in files:
        if file.endswith(".parquet"):
            rows += pq.read_table(file).to_pylist()
        else:
            with open(file, encoding="utf-8") as handle:
                rows += [json.loads(line) for line in handle]
    seen: set[str] = set()
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    counts = {"kept": 0, "invalid": 0, "duplicates": 0, "contaminated": 0}
    for i, row in enumerate(rows):
        messages = to_messages(row)
        if messages is None or not valid(messages, row, jsonschema):
            counts["invalid"] += 1
            continue
        rendered = "".join(
            f"<|im_start|>{m['role']}\n{m.get('content') or ''}"
            f"{json.dumps(m.get('tool_calls')) if m.get('tool_calls') else ''}<|im_end|>\n"
            for m in messages
        )
        if len(tokenizer.encode(rendered).ids) > max_tokens:
            counts["invalid"] += 1
            continue
        user = "\n".join(m["content"] for m in messages if m["role"] == "user")
        key = " ".join(user.casefold().split())
        if key in seen:
            counts["duplicates"] += 1
            continue
        seen.add(key)
        tokens = key.split()
        minhash = MinHash(num_perm=128)
        for j in range(max(1, len(tokens) - 4)):
            minhash.update(" ".join(tokens[j : j + 5]).encode())
        if lsh.query(minhash):
            counts["duplicates"] += 1
            continue
        lsh.insert(str(i), minhash)
        texts = [m.get("content") or "" for m in messages if m["role"] in ("user", "assistant")]
        if any(grams(t) & eval_grams for t in texts):
            counts["contaminated"] += 1
            continue
        counts["kept"] += 1
    return counts


VISION = re.compile(r"<image>|<\|image_pad\|>|<\|media_pad\|>|data:image/")


def to_messages(row: dict) -> list[dict] | None:
    """Messages with text content, or None when the row is unusable (media parts, placeholders, unknown format)."""
    if "image" in row or "images" in row:
        return None
    if "messages" in row:
        messages = [dict(m) for m in row["messages"] if m.get("role") != "system"]
        for m in messages:
            if isinstance(m.get("content"), list):
                if any(p.get("type") != "text" for p in m["content"]):
                    return None
                m["content"] = "\n".join(p["text"] for p in m["content"])
            if m.get("content") and VISION.search(m["content"]):
                return None
        return messages
    if "conversations" in row:
        roles = {"human": "user", "gpt": "assistant", "function_call": "assistant", "observation": "tool"}
        return [{"role": roles.get(t["from"], t["from"]), "content": t["value"]} for t in row["conversations"]]
    if "instruction" in row:
        return [
            {"role": "user", "content": row["instruction"] + ("\n\n" + row["input"] if row.get("input") else "")},
            {"role": "assistant", "content": row["output"]},
        ]
    return None


def valid(messages: list[dict], row: dict, jsonschema) -> bool:
    if not messages or messages[0]["role"] != "user" or messages[-1]["role"] != "assistant":
        return False
    tools = row.get("tools") or []
    schemas = {t["function"]["name"]: t["function"].get("parameters") for t in tools if isinstance(t, dict)}
    for m in messages:
        if m["role"] == "assistant" and not (m.get("content") or "").strip() and not m.get("tool_calls"):
            return False
        for call in m.get("tool_calls") or []:
            try:
                args = json.loads(call["function"]["arguments"])
                if call["function"]["name"] in schemas:
                    jsonschema.validate(args, schemas[call["function"]["name"]])
            except (json.JSONDecodeError, jsonschema.ValidationError):
                return False
    return True


def count_rows(path: str) -> int:
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    with open(path, encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20000, help="about this many input conversations")
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from fusionforge.mixers.sft.build import run_build
    from fusionforge.mixers.sft.config import BuildConfig
    from fusionforge.mixers.sft.sample_data import make_chat_corpus

    work = Path(tempfile.mkdtemp(prefix="ff-bench-sft-"))
    try:
        sources, eval_file = make_chat_corpus(work / "raw", seed=0, n=max(10, int(args.conversations / 1.85)))
        tokenizer = train_tokenizer(work / "tokenizer.json")
        total = sum(count_rows(f) for f in sources.values())
        evals = count_rows(eval_file)
        print(f"{total} conversations in {len(sources)} files, {evals} eval questions, tokenizer vocab 8000")
        rows = []
        started = time.perf_counter()
        counts = reference(list(sources.values()), eval_file, tokenizer, args.max_tokens)
        rows.append(("hand-written script (reference)", time.perf_counter() - started, counts))
        inputs = tuple(f"{k}={v}" for k, v in sources.items())
        executors = ["local"] if args.skip_ray else ["local", "ray"]
        for executor in executors:
            if executor == "ray":
                from fusionforge.pipelines.core.ray_env import init_ray

                began = time.perf_counter()
                init_ray()
                print(f"(ray start-up, not counted below: {time.perf_counter() - began:.1f} s)")
            started = time.perf_counter()
            report = run_build(
                BuildConfig(
                    inputs=inputs,
                    output=str(work / f"out-{executor}"),
                    tokenizer=tokenizer,
                    max_tokens=args.max_tokens,
                    decontaminate=(f"eval={eval_file}",),
                    run=RunSettings(executor=executor),
                    val_fraction=0.01,
                )
            )
            reasons = report["reasons"]
            counts = {
                "kept": report["kept"],
                "invalid": sum(v for k, v in reasons.items() if k.startswith(("sft_validate", "sft_parse"))),
                "duplicates": report["dedup"]["exact"] + report["dedup"]["near"],
                "contaminated": report["decontamination"]["removed"],
            }
            rows.append((f"fusionforge sft build --executor {executor}", time.perf_counter() - started, counts))
        print(f"\n{'pipeline':40} {'seconds':>8} {'conv/s':>8} {'ratio':>6}  kept / invalid / dup / contaminated")
        ref_rate = total / rows[0][1]
        for name, seconds, c in rows:
            rate = total / seconds
            print(
                f"{name:40} {seconds:8.2f} {rate:8.0f} {rate / ref_rate:6.2f}  "
                f"{c['kept']} / {c['invalid']} / {c['duplicates']} / {c['contaminated']}"
            )
        print("\nratio = conversations/s of the pipeline / conversations/s of the hand-written script, same run")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
