"""``fusionforge rft run`` through click: options reach the loop, errors read as errors."""

import json

from click.testing import CliRunner
from fusionforge.cli.main import cli
from fusionforge.rft.scripted_server import Call, Reply, ScriptedServer


def _prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": "a", "question": "1+1?", "answer": "2", "task": "count"},
            {"id": "b", "question": "Pick", "answer": "C", "task": "choice"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_run_prints_the_report_as_json_and_passes_options_through(tmp_path):
    bodies = []

    def respond(call: Call):
        bodies.append(dict(call.body))
        return Reply("Answer: 2" if call.prompt == "1+1?" else "The answer is (C)")

    with ScriptedServer(respond) as server:
        result = CliRunner().invoke(cli, [
            "rft", "run", str(_prompts(tmp_path)), "-o", str(tmp_path / "out"), "--endpoint", server.url,
            "--model", "scripted", "-k", "3", "--temperature", "0.3", "--max-tokens", "50", "--stop", "###",
            "--extra-body", '{"top_k": 7}', "--system-prompt", "Be brief.", "--n-mode", "never",
            "--verifier-workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accepted_samples"] == 2 and report["buckets"] == {"all_pass": 2}
    assert report["samples"]["by_status"] == {"pass": 6}
    body = bodies[0]
    assert (body["temperature"], body["max_tokens"], body["stop"], body["top_k"]) == (0.3, 50, ["###"], 7)
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    sft = [json.loads(line) for line in (tmp_path / "out" / "sft.jsonl").read_text().splitlines()]
    assert sft[0]["messages"][0]["content"] == "Be brief."


def test_the_table_summary_names_the_key_figures(tmp_path):
    with ScriptedServer(lambda call: Reply("Answer: 2")) as server:
        result = CliRunner().invoke(cli, ["rft", "run", str(_prompts(tmp_path)), "-o", str(tmp_path / "out"),
                                          "--endpoint", server.url, "--model", "scripted", "-k", "2",
                                          "--verifier-workers", "1"])
    assert result.exit_code == 0, result.output
    for label in ("solved prompts", "accepted samples", "RL pool", "pass@2", "bucket all_pass", "bucket all_fail"):
        assert label in result.output


def test_bad_options_are_clear_errors(tmp_path):
    prompts = str(_prompts(tmp_path))
    result = CliRunner().invoke(cli, ["rft", "run", prompts, "-o", str(tmp_path / "o"), "--model", "m",
                                      "--endpoint", "http://127.0.0.1:9/v1", "--extra-body", "[1, 2]"])
    assert result.exit_code == 2 and "must be a JSON object" in result.output
    result = CliRunner().invoke(cli, ["rft", "run", prompts, "-o", str(tmp_path / "o"), "--model", "m"],
                                env={"FUSIONFORGE_RFT_ENDPOINT": None})
    assert result.exit_code == 1 and "needs --endpoint" in result.output
    result = CliRunner().invoke(cli, ["rft", "run", prompts, "-o", str(tmp_path / "o"), "--model", "m",
                                      "--endpoint", "http://127.0.0.1:9/v1", "--round-k-factor", "0.5"])
    assert result.exit_code == 1 and "round-k-factor" in result.output
    assert not (tmp_path / "o").exists()
