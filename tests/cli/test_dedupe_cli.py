import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fusionforge.cli.main import cli


def _sharded(tmp_path):
    base = "The quick brown fox jumps over the lazy dog near the river bank at dawn while birds sing"
    rows = [
        {"id": "a", "text": base},
        {"id": "b", "text": base.upper() + "  "},
        {"id": "c", "text": base.replace("dawn", "dusk")},
        {"id": "d", "text": "Something else, unrelated."},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(cli, ["shard", str(path), "-o", str(tmp_path / "in"), "--executor", "local"])
    assert result.exit_code == 0, result.output
    return tmp_path / "in"


def test_dedupe_command_json_report_and_ledger(tmp_path):
    src = _sharded(tmp_path)
    args = [
        "dedupe",
        str(src),
        "-o",
        str(tmp_path / "out"),
        "--executor",
        "local",
        "--text-threshold",
        "0.5",
        "--only",
        "text",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["reasons"] == {"dedupe:exact_dup_of": 1, "dedupe:near_dup_of": 1}  # kinds; the ledger names t/a
    reasons = pq.read_table(tmp_path / "out" / "ledger.parquet").column("reason").to_pylist()
    assert sorted(r for r in reasons if r) == ["dedupe:exact_dup_of:t/a", "dedupe:near_dup_of:t/a"]
    assert report["dedupe"]["clusters"] == 1 and report["kept"] == 2
    assert pq.read_table(tmp_path / "out" / "clusters.parquet").num_rows == 3


def test_dedupe_command_errors_are_clean(tmp_path):
    src = _sharded(tmp_path)
    result = CliRunner().invoke(cli, ["dedupe", str(src), "-o", str(tmp_path / "o"), "--keep", "best:quality"])
    assert result.exit_code != 0 and "no numeric column 'quality'" in result.output
    result = CliRunner().invoke(cli, ["dedupe", str(src), "-o", str(tmp_path / "o"), "--bands", "3"])
    assert result.exit_code != 0 and "--bands and --rows" in result.output
    assert "Traceback" not in result.output


def _pair_corpus(tmp_path):
    """Two texts sharing their first 100 of 200 words (word 5-gram Jaccard 96 / 296 = 0.32), and a stranger."""
    words = [f"w{i}" for i in range(400)]
    rows = [
        {"id": "a", "text": " ".join(words[:200])},
        {"id": "b", "text": " ".join(words[:100] + words[200:300])},
        {"id": "c", "text": " ".join(words[300:400])},
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(cli, ["shard", str(path), "-o", str(tmp_path / "in"), "--executor", "local"])
    assert result.exit_code == 0, result.output
    return tmp_path / "in"


def _dedupe(src, out, *options):
    result = CliRunner().invoke(
        cli, ["dedupe", str(src), "-o", str(out), "--executor", "local", "--only", "text", "--json", *options]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_given_bands_and_rows_are_used_and_no_verify_keeps_what_verification_removes(tmp_path):
    src = _pair_corpus(tmp_path)
    # 64 bands of 2 rows: a pair at Jaccard 0.32 shares a band with probability 1 - (1 - 0.32**2)**64 > 0.999;
    # the default bands for 0.8 (17 x 7) with probability 0.004.
    unverified = _dedupe(src, tmp_path / "wide", "--bands", "64", "--rows", "2", "--no-verify")
    assert unverified["dedupe"]["lsh"] == {"bands": 64, "rows": 2, "num_perm": 128}
    assert unverified["reasons"] == {"dedupe:near_dup_of": 1}
    assert "dedupe:near_dup_of:p/a" in pq.read_table(tmp_path / "wide" / "ledger.parquet").column("reason").to_pylist()
    similarity = pq.read_table(tmp_path / "wide" / "clusters.parquet").to_pylist()[1]["similarity"]
    assert 0.15 < similarity < 0.5  # the signature estimate, kept although far below the 0.8 threshold
    verified = _dedupe(src, tmp_path / "verified", "--bands", "64", "--rows", "2")
    assert verified["reasons"] == {} and verified["dedupe"]["lsh"]["bands"] == 64
    default_bands = _dedupe(src, tmp_path / "default", "--no-verify")
    assert default_bands["reasons"] == {} and default_bands["dedupe"]["lsh"] == {
        "bands": 17,
        "rows": 7,
        "num_perm": 128,
    }


def test_cli_and_library_share_the_default_seed(tmp_path):
    from fusionforge.cli.dedupe import dedupe
    from fusionforge.filters.dedup.minhash import TextSketcher
    from fusionforge.filters.dedup.sketch import DedupeSketch
    from fusionforge.pipelines.core.config import DEFAULT_SEED
    from fusionforge.pipelines.core.errors import ConfigError
    from fusionforge.pipelines.core.settings import build_config
    from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe

    seed_option = next(p for p in dedupe.params if p.name == "seed")
    assert seed_option.default == DedupeConfig(input="i", output="o").run.seed == DEFAULT_SEED
    assert DedupeSketch().sketcher.seed == TextSketcher().seed == DEFAULT_SEED
    src = _pair_corpus(tmp_path)
    out = tmp_path / "out"
    _dedupe(src, out, "--text-threshold", "0.3")
    library = {
        "input": str(src),
        "output": str(out),
        "executor": "local",
        "images": False,
        "videos": False,
        "text_threshold": 0.3,
        "resume": True,
    }
    report = run_dedupe(build_config(DedupeConfig, library))  # same settings as the CLI run: its finished report
    assert report["reasons"] == {"dedupe:near_dup_of": 1}
    with pytest.raises(ConfigError, match="settings differ"):
        run_dedupe(build_config(DedupeConfig, {**library, "seed": DEFAULT_SEED + 1}))
