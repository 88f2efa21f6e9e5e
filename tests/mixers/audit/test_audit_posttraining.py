"""The audit of post-training outputs: a real ``sft build`` set and a real ``rft run`` against a scripted server."""

import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from fusionforge.mixers.audit import AuditOptions, run_audit
from fusionforge.mixers.audit.html import render_html
from fusionforge.mixers.audit.schema import REPORT_SCHEMA
from fusionforge.mixers.audit.terminal import render
from fusionforge.pipelines.core.settings import RunSettings

PROMPTS = [
    {"id": "one", "question": "What is 1 + 1?", "answer": "2", "task": "numeric"},
    {"id": "two", "question": "What is 2 + 2?", "answer": "4", "task": "numeric"},
    {"id": "city", "question": "Capital of France?", "answer": "Paris", "task": "exact"},
    {"id": "broken", "question": "No answer given", "task": "numeric"},  # invalid: no ground truth
]


def _respond(call):
    from fusionforge.rft.scripted_server import Reply

    if "1 + 1" in call.prompt:
        return Reply("Answer: 2")
    if "2 + 2" in call.prompt:  # right or wrong by the sample's (fixed) seed: a mixed prompt
        return Reply("Answer: 4" if call.seed % 3 else "Answer: 5")
    return Reply("Answer: Rome", finish_reason="length" if call.seed % 3 == 0 else "stop")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    from fusionforge.mixers.sft.build import run_build
    from fusionforge.mixers.sft.config import BuildConfig
    from fusionforge.mixers.sft.sample_data import make_chat_corpus
    from fusionforge.rft.clients import OpenAIClient, Sampling
    from fusionforge.rft.config import RFTConfig
    from fusionforge.rft.loop import run_rft
    from fusionforge.rft.scripted_server import ScriptedServer

    root = tmp_path_factory.mktemp("posttraining")
    chats, _evals = make_chat_corpus(root / "chats", seed=0, n=20)
    run_build(
        BuildConfig(
            inputs=tuple(f"{k}={v}" for k, v in chats.items()),
            output=str(root / "sft"),
            val_fraction=0.2,
            run=RunSettings(executor="local"),
        )
    )
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    with ScriptedServer(_respond) as server:
        run_rft(
            RFTConfig(
                prompts=str(prompts),
                output=str(root / "rft"),
                k=6,
                accept="all",
                verifier_workers=1,
                sampling=Sampling(temperature=0.5, max_tokens=16),
            ),
            OpenAIClient(server.url, "scripted", concurrency=4),
        )
    return {"sft": root / "sft", "rft": root / "rft"}


@pytest.fixture(scope="module")
def report(outputs):
    return run_audit([str(outputs["sft"]), str(outputs["rft"])])


def test_sft_sets_are_summarised_per_split_and_source(outputs, report):
    sft = report["sft"]
    built = json.loads((outputs["sft"] / "report.json").read_text())
    assert sft["steps"] == ["sft_build"] and not report["skipped"]
    assert [s["split"] for s in sft["splits"]] == ["train", "val"]
    for split in sft["splits"]:
        assert {k: split[k] for k in ("conversations", "rows", "tokens")} == built["splits"][split["split"]]
        frame = pd.read_parquet(outputs["sft"] / f"{split['split']}.parquet")
        first = frame[frame["repeat"] == 0]
        assert split["tool_use_share"] == pytest.approx((first["n_tool_calls"] > 0).mean())
        rows = {r["source"]: r for r in sft["by_source"] if r["split"] == split["split"]}
        for source, group in frame.groupby("source"):
            assert (rows[source]["rows"], rows[source]["tokens"]) == (len(group), group["n_tokens"].sum())
            assert rows[source]["token_share"] == pytest.approx(group["n_tokens"].sum() / frame["n_tokens"].sum())
    tokens = pd.concat([pd.read_parquet(outputs["sft"] / f"{s}.parquet") for s in ("train", "val")])
    histogram = sft["tokens_per_conversation"]
    assert (histogram["count"], histogram["max"]) == (len(tokens), tokens["n_tokens"].max())
    assert histogram["quantiles"]["p50"] == np.percentile(tokens["n_tokens"], 50, method="inverted_cdf")
    funnel = report["funnel"]["all"]  # the ledger next to the set: every input conversation's fate
    assert (funnel[0]["remaining"], funnel[-1]["remaining"]) == (built["inputs"], built["kept"])


def test_rft_results_are_summarised_per_task_bucket_and_status(outputs, report):
    rft = report["rft"]
    ran = json.loads((outputs["rft"] / "report.json").read_text())
    prompts = pd.read_parquet(outputs["rft"] / "pass_rates.parquet")
    assert rft["steps"] == ["rft"] and rft["prompts"] == ran["prompts"]["inputs"] == 4
    assert {b["bucket"]: b["prompts"] for b in rft["buckets"]} == ran["buckets"]
    assert {b["bucket"] for b in rft["buckets"]} >= {"all_pass", "mixed", "invalid"}
    for row in rft["by_task"]:
        if row["task"] in ran["acceptance_by_task"]:
            expected = ran["acceptance_by_task"][row["task"]]
            assert (row["prompts"], row["samples"], row["passed"], row["accepted"]) == (
                expected["prompts"],
                expected["samples_counted"],
                expected["passed"],
                expected["accepted_samples"],
            )
            assert row["pass_rate"] == pytest.approx(expected["pass_rate"])
    assert rft["mean_pass_rate"] == pytest.approx(prompts["pass_rate"].dropna().mean())
    assert rft["pass_rate"]["count"] == 3  # the invalid prompt has no rate
    assert {s["status"]: s["samples"] for s in rft["by_status"]} == ran["samples"]["by_status"]
    assert (rft["samples"], rft["accepted"]) == (ran["samples"]["total"], ran["accepted_samples"])
    assert (rft["prompt_tokens"], rft["completion_tokens"]) == (ran["tokens"]["prompt"], ran["tokens"]["completion"])


def test_posttraining_reports_validate_render_and_are_never_sampled(outputs, report):
    jsonschema.validate(json.loads(json.dumps(report)), REPORT_SCHEMA, cls=jsonschema.Draft202012Validator)
    sampled = run_audit([str(outputs["sft"]), str(outputs["rft"])], AuditOptions(sample=0.5))
    assert sampled["exact"] is False and (sampled["sft"], sampled["rft"]) == (report["sft"], report["rft"])
    console = Console(file=io.StringIO(), record=True, width=200)
    console.print(render(report))
    text = console.export_text()
    assert "SFT set" in text and "RFT results: 4 prompts" in text and "mixture by source" not in text
    train = next(line for line in text.splitlines() if "│ train " in line and "│ all " in line)
    assert f"{report['sft']['splits'][0]['tokens']:,}" in train
    page = render_html(report)
    assert "<h2>SFT set</h2>" in page and "<h2>RFT results</h2>" in page and "Mixture: realised" not in page


def test_an_rft_output_alone_is_named_rft(outputs, tmp_path):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("pass_rates.parquet", "samples.parquet", "report.json", "config.yaml"):
        (moved / name).write_bytes((Path(outputs["rft"]) / name).read_bytes())
    assert run_audit([str(moved)])["steps"] == ["rft"]
