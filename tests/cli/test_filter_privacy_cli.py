"""`filter --pii --decontaminate`: redacted shards, a ledger row per record, scores in rejected/ and the report."""

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.mixers.audit import run_audit
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.shard import ShardConfig, run_shard

EVAL = "Which of the following is the body cavity that contains the pituitary gland in the human skull"
DOCS = {
    "mail": "Write to jane.doe@example.com or call +44 20 7946 0958 — danke schön, 東京.",
    "card": "Card 4111 1111 1111 1111 and 5555-5555-5555-4444 and 3782 822463 10005 leaked.",
    "leak": f"Practice test: {EVAL}? Answer: cranial.",
    "clean": "Nothing personal and nothing from a benchmark, only an ordinary sentence about rivers.",
}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("privacy")
    raw = folder / "docs.jsonl"
    raw.write_text("".join(json.dumps({"id": k, "text": v}, ensure_ascii=False) + "\n" for k, v in DOCS.items()))
    run_shard(ShardConfig(inputs=(f"docs={raw}",), output=str(folder / "shards"), run=RunSettings(executor="local")))
    (folder / "mmlu.jsonl").write_text(json.dumps({"id": "anatomy-3", "question": EVAL}) + "\n")
    return folder


def test_pii_and_decontamination_flags(shards, tmp_path):
    out = tmp_path / "out"
    args = ["filter", str(shards / "shards"), "-o", str(out), "--config", str(_config(tmp_path))]
    args += ["--pii", "--pii-max-items", "2", "--decontaminate", f"mmlu={shards / 'mmlu.jsonl'}"]
    result = CliRunner().invoke(cli, [*args, "--executor", "local", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["inputs"], report["kept"]) == (4, 2)
    assert report["reasons"] == {"decontaminate_v1:ngram:mmlu": 1, "text_pii_v1:too_much_pii": 1}
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    assert sorted(r["id"] for r in ledger) == sorted(f"docs/{k}" for k in DOCS)
    kept = {r["id"]: r for r in pq.read_table(out / "manifest.parquet").to_pylist()}
    assert kept["docs/mail"]["text"] == "Write to <EMAIL> or call <PHONE> — danke schön, 東京."
    assert kept["docs/clean"]["text"] == DOCS["clean"]
    rejected = {r["id"]: r for r in pq.read_table(out / "rejected").to_pylist()}
    assert rejected["docs/card"]["text_pii_v1__credit_card"] == 3
    assert rejected["docs/card"]["text"] == "Card <CREDIT_CARD> and <CREDIT_CARD> and <CREDIT_CARD> leaked."
    assert rejected["docs/leak"]["decontaminate_v1__eval_sample"] == "anatomy-3"
    spans = kept["docs/mail"]["text_pii_v1__spans"]
    assert [DOCS["mail"][s["start"] : s["end"]] for s in spans] == ["jane.doe@example.com", "+44 20 7946 0958"]
    scores = report["scores"]
    assert scores["text_pii_v1__credit_card"]["total"] == 3 and scores["text_pii_v1__email"]["total"] == 1
    assert scores["decontaminate_v1__ngram_hits"]["count"] == 4
    audited = run_audit([str(out)])["distributions"]["filter"]  # the audit finds the new score columns itself
    assert audited["rejected"]["score/text_pii_v1__credit_card"]["max"] == 3
    assert audited["kept"]["score/text_pii_v1__email"]["max"] == 1
    assert audited["rejected"]["score/decontaminate_v1__ngram_hits"]["count"] == 2


def _config(tmp_path):
    path = tmp_path / "filters.yaml"
    path.write_text("filters:\n  - stage: text_pii_v1\n    action: redact\n")
    return path
