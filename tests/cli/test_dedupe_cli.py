import json

import pyarrow.parquet as pq
from click.testing import CliRunner
from fusionforge.cli.main import cli


def _sharded(tmp_path):
    base = "The quick brown fox jumps over the lazy dog near the river bank at dawn while birds sing"
    rows = [{"id": "a", "text": base}, {"id": "b", "text": base.upper() + "  "},
            {"id": "c", "text": base.replace("dawn", "dusk")}, {"id": "d", "text": "Something else, unrelated."}]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(cli, ["shard", str(path), "-o", str(tmp_path / "in"), "--executor", "local"])
    assert result.exit_code == 0, result.output
    return tmp_path / "in"


def test_dedupe_command_json_report_and_ledger(tmp_path):
    src = _sharded(tmp_path)
    args = ["dedupe", str(src), "-o", str(tmp_path / "out"), "--executor", "local", "--text-threshold", "0.5",
            "--only", "text", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["reasons"] == {"dedupe:exact_dup_of:t/a": 1, "dedupe:near_dup_of:t/a": 1}
    assert report["dedupe"]["clusters"] == 1 and report["kept"] == 2
    assert pq.read_table(tmp_path / "out" / "clusters.parquet").num_rows == 3


def test_dedupe_command_errors_are_clean(tmp_path):
    src = _sharded(tmp_path)
    result = CliRunner().invoke(cli, ["dedupe", str(src), "-o", str(tmp_path / "o"), "--keep", "best:quality"])
    assert result.exit_code != 0 and "no numeric column 'quality'" in result.output
    result = CliRunner().invoke(cli, ["dedupe", str(src), "-o", str(tmp_path / "o"), "--bands", "3"])
    assert result.exit_code != 0 and "--bands and --rows" in result.output
    assert "Traceback" not in result.output
