"""``fusionforge demo`` end to end: every step runs on the generated corpus and does what its table claims."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import psutil
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.pipelines.demo_corpus import make_corpus


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    """One demo run (in-process executor: the Ray path of every step has its own tests)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    result = CliRunner().invoke(cli, ["demo", "-o", str(out), "--executor", "local"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    left = [child for child in psutil.Process().children(recursive=True) if child.pid not in before]
    assert not [child.cmdline() for child in left if child.is_running()], "the demo left processes behind"
    return out, result.output


def report(out: Path, step: str) -> dict:
    return json.loads((out / step / "report.json").read_text())


def ledger(out: Path, step: str):
    return pq.read_table(out / step / "ledger.parquet")


def test_the_corpus_is_the_same_for_the_same_seed(tmp_path):
    first = make_corpus(tmp_path / "a", seed=3, n_text=20)
    second = make_corpus(tmp_path / "b", seed=3, n_text=20)
    assert [Path(p).relative_to(tmp_path / "a") for p in first.values()] == [
        Path(p).relative_to(tmp_path / "b") for p in second.values()
    ]
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) > 50
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    other = make_corpus(tmp_path / "c", seed=4, n_text=20)
    assert Path(other["web"]).read_bytes() != Path(first["web"]).read_bytes()


def test_every_input_has_a_fate_and_every_planted_fault_its_reason(demo_run):
    out, printed = demo_run
    shard = report(out, "shards")
    assert shard["inputs"] == shard["kept"] + shard["dropped"] + shard["failed"] == ledger(out, "shards").num_rows
    for planted in (
        "read:malformed_json",
        "read:missing_field",
        "read:missing_file",
        "read:unsafe_member_path",
        "probe:undecodable_image",
        "probe:corrupt_video",
        "ingest_finalize_v1:empty_text",
    ):
        assert shard["reasons"].get(planted, 0) >= 1, planted
    assert shard["reasons"]["probe:undecodable_image"] == 2  # random bytes and a PNG cut in half
    assert "demo finished" in printed and f"{shard['inputs']}" in printed


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_dedupe_drops_the_planted_duplicates_and_keeps_the_rest(demo_run):
    out, _ = demo_run
    rows = [json.loads(line) for line in (out / "raw" / "web.jsonl").read_text().splitlines()]
    originals = {row["url"]: row for row in rows if re.fullmatch(r"web-\d{5}", row["id"])}
    fate = dict(zip(ledger(out, "dedup")["id"].to_pylist(), ledger(out, "dedup")["reason"].to_pylist()))
    for row in rows:
        original = originals[row["url"]]
        if row["id"].startswith("web-exact-"):
            assert fate[f"web/{row['id']}"] == f"dedupe:exact_dup_of:web/{original['id']}"
        elif row["id"].startswith("web-near-"):
            a, b = shingles(row["text"]), shingles(original["text"])
            jaccard = len(a & b) / len(a | b)
            if jaccard >= 0.9:
                assert fate[f"web/{row['id']}"].startswith("dedupe:"), (row["id"], jaccard)
            elif jaccard < 0.7:
                assert fate[f"web/{row['id']}"] is None, (row["id"], jaccard)
    assert sum(reason is not None for reason in fate.values()) == report(out, "dedup")["dropped"]
    clusters = pq.read_table(out / "dedup" / "clusters.parquet")
    images = clusters.filter(pc.equal(clusters["space"], "image"))
    members = set(images["member_id"].to_pylist())
    assert "photos/img_950.jpg" in {m.split("#")[0] for m in members}  # the larger re-encoded copy of a pair's image
    assert any(m.startswith("pairs/") for m in members)


def test_filter_says_what_it_skipped_and_which_language_detector_ran(demo_run):
    out, printed = demo_run
    flat = " ".join(printed.split())
    assert "CLIP" in flat and "skipped" in flat
    # semantic dedup runs only with a model in the local cache, which this offline machine has not
    assert "skipped semantic dedup: no embedding model is available offline" in flat
    assert not (out / "semantic-dedup").exists()
    filtered = report(out, "filtered")
    assert filtered["derived"] > 0  # scene splitting turned a video into clips: new records, each with a fate
    assert filtered["inputs"] + filtered["derived"] == filtered["kept"] + filtered["dropped"] + filtered["failed"]
    assert filtered["language_detector"] in flat
    docs = ledger(out, "filtered").filter(pc.equal(ledger(out, "filtered")["source"], "docs"))
    assert pc.sum(pc.equal(docs["status"], "kept")).as_py() >= docs.num_rows // 2  # interleaved documents survive


def test_pack_meets_the_target_vision_share(demo_run):
    out, printed = demo_run
    packed = report(out, "packed")
    assert packed["target_vision_ratio"] == 0.10
    assert abs(packed["global_vision_ratio"] - 0.10) < 0.005
    plan = pq.read_table(out / "packed" / "plan.parquet")
    assert plan.num_rows == packed["sequences"] > 0
    assert "vision-token ratio" in printed


def test_post_training_steps_write_text_only_sft_and_label_the_rft_plumbing(demo_run):
    out, printed = demo_run
    sft = report(out, "sft")
    assert sft["kept"] > 0 and sft["vision"]["output_vision_parts"] == 0
    trajectories = [json.loads(line) for line in (out / "sft_proxy" / "trajectories.jsonl").read_text().splitlines()]
    assert trajectories and all(any(m["role"] == "tool" for m in t["messages"]) for t in trajectories)
    rft = report(out / "rft", "out")
    assert rft["prompts"]["valid"] == 4 and rft["samples"]["total"] > 0
    assert "PLUMBING DEMONSTRATION" in " ".join(printed.split())
    isolation = json.loads((out / "sft_proxy" / "report.json").read_text())["sandbox"]["isolation"]
    assert isolation.startswith("namespaces (bubblewrap")
    assert f"sandbox {isolation}" in " ".join(printed.replace("│", " ").split())


def test_the_demo_writes_the_audit_report(demo_run):
    out, printed = demo_run
    html = (out / "audit.html").read_text()
    assert "data:image/png;base64," in html and "audit report" in printed
    assert "audit.html" in "".join(printed.split())  # rich may wrap the long path


def test_the_demo_ends_with_a_training_step_on_its_packed_output(demo_run):
    out, printed = demo_run
    packed = report(out, "packed")
    assert packed["text_tokens_method"] == f"tokenizer:{out / 'tokenizer'}"  # real ids: the loader can rebuild them
    flat = " ".join(printed.split())
    step = re.search(r"training step tiny random-weight Kimi K2\.5 on sequence (\d+) .*?: loss (\S+) \(", flat)
    assert step, flat[-600:]
    loss = float(step.group(2))
    assert math.isfinite(loss) and 0 < loss < 2 * math.log(2048)  # random weights: about ln(vocabulary size)
    assert int(step.group(1)) < packed["sequences"]
    assert flat.index("training step") < flat.index("demo finished")
    assert "audit report" in flat[: flat.index("training step")]


def test_filter_redacts_the_planted_personal_data_and_drops_the_eval_documents(demo_run):
    out, printed = demo_run
    filtered = report(out, "filtered")
    assert filtered["reasons_by_source"]["news"]["decontaminate_v1:ngram:demo_eval"] == 2
    assert filtered["scores"]["text_pii_v1__email"]["total"] == filtered["scores"]["text_pii_v1__phone"]["total"] == 3
    texts = [
        row["text"]
        for part in (out / "filtered" / "manifest.parquet", out / "filtered" / "rejected")
        for row in pq.read_table(part, columns=["id", "text"]).to_pylist()
        if row["id"].startswith("news/")
    ]
    assert sum(t.endswith("Reach the city desk at <EMAIL> or <PHONE>.") for t in texts) == 3
    assert not any("@example.org" in t for t in texts)
    assert "personal data redacted (text_pii_v1): email 3, phone 3" in " ".join(printed.split())


def crawl_rows(table):
    return table.filter(pc.equal(table["source"], "crawl"))


def test_the_crawl_flows_from_the_warc_to_the_packer_losing_its_boilerplate_and_logos(demo_run):
    out, printed = demo_run
    assert "read:http_404" in crawl_rows(ledger(out, "shards"))["reason"].to_pylist()
    dedup = crawl_rows(ledger(out, "dedup"))["reason"].to_pylist()
    assert "dedupe:boilerplate_only" in dedup and any((r or "").startswith("dedupe:exact_dup_of:crawl/") for r in dedup)
    assert report(out, "dedup")["dedupe"]["paragraphs"]["frequent_paragraphs"] >= 3  # each site's newsletter line
    kept = crawl_rows(pq.read_table(out / "filtered" / "manifest.parquet"))
    assert kept.num_rows >= 10
    assert pc.min(kept["interleaved_nodes_v1__removed_url_pattern"]).as_py() == 1  # every page lost its logo
    assert all("newsletter" not in text for text in kept["text"].to_pylist())
    assert report(out, "packed")["tokens_by_source"]["crawl"] > 0
    flat = " ".join(printed.replace("│", " ").split())
    assert "documents per domain" in flat and "news.example.org" in flat and "boilerplate:" in flat
