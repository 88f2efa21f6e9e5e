"""``fusionforge rft run`` through click: options reach the loop, errors read as errors."""

import json

from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.rft.scripted_server import Call, Reply, ScriptedServer


def _prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [
        {"id": "a", "question": "1+1?", "answer": "2", "task": "count"},
        {"id": "b", "question": "Pick", "answer": "C", "task": "choice"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_run_prints_the_report_as_json_and_passes_options_through(tmp_path):
    bodies = []

    def respond(call: Call):
        bodies.append(dict(call.body))
        return Reply("Answer: 2" if call.prompt == "1+1?" else "The answer is (C)")

    with ScriptedServer(respond) as server:
        result = CliRunner().invoke(
            cli,
            [
                "rft",
                "run",
                str(_prompts(tmp_path)),
                "-o",
                str(tmp_path / "out"),
                "--endpoint",
                server.url,
                "--model",
                "scripted",
                "-k",
                "3",
                "--temperature",
                "0.3",
                "--max-tokens",
                "50",
                "--stop",
                "###",
                "--extra-body",
                '{"top_k": 7}',
                "--system-prompt",
                "Be brief.",
                "--n-mode",
                "never",
                "--verifier-workers",
                "1",
                "--json",
            ],
        )
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
        result = CliRunner().invoke(
            cli,
            [
                "rft",
                "run",
                str(_prompts(tmp_path)),
                "-o",
                str(tmp_path / "out"),
                "--endpoint",
                server.url,
                "--model",
                "scripted",
                "-k",
                "2",
                "--verifier-workers",
                "1",
            ],
        )
    assert result.exit_code == 0, result.output
    for label in ("solved prompts", "accepted samples", "RL pool", "pass@2", "bucket all_pass", "bucket all_fail"):
        assert label in result.output


def test_bad_options_are_clear_errors(tmp_path):
    prompts = str(_prompts(tmp_path))
    result = CliRunner().invoke(
        cli,
        [
            "rft",
            "run",
            prompts,
            "-o",
            str(tmp_path / "o"),
            "--model",
            "m",
            "--endpoint",
            "http://127.0.0.1:9/v1",
            "--extra-body",
            "[1, 2]",
        ],
    )
    assert result.exit_code == 2 and "must be a JSON object" in result.output
    result = CliRunner().invoke(
        cli, ["rft", "run", prompts, "-o", str(tmp_path / "o"), "--model", "m"], env={"FUSIONFORGE_RFT_ENDPOINT": None}
    )
    assert result.exit_code == 1 and "needs --endpoint" in result.output
    result = CliRunner().invoke(
        cli,
        [
            "rft",
            "run",
            prompts,
            "-o",
            str(tmp_path / "o"),
            "--model",
            "m",
            "--endpoint",
            "http://127.0.0.1:9/v1",
            "--round-k-factor",
            "0.5",
        ],
    )
    assert result.exit_code == 1 and "round-k-factor" in result.output
    assert not (tmp_path / "o").exists()


def test_the_code_sandbox_network_mode_is_reported_and_block_is_a_warning(tmp_path):
    from fusionforge.pipelines.core.sandbox_network import BLOCK_WARNING, LABELS, resolve_network_mode

    prompts = tmp_path / "code.jsonl"
    prompts.write_text(
        json.dumps({"id": "add", "question": "Write add(a, b).", "task": "code", "answer": "assert add(2, 3) == 5"})
        + "\n"
    )
    answer = "```python\ndef add(a, b):\n    return a + b\n```"
    with ScriptedServer(lambda call: Reply(answer)) as server:
        common = [
            "rft",
            "run",
            str(prompts),
            "--endpoint",
            server.url,
            "--model",
            "scripted",
            "-k",
            "2",
            "--verifier-workers",
            "1",
        ]
        as_json = CliRunner().invoke(cli, [*common, "-o", str(tmp_path / "auto"), "--json"])
        blocked = CliRunner().invoke(
            cli, [*common, "-o", str(tmp_path / "block"), "--verify-options", '{"code": {"network": "block"}}']
        )
        refused = CliRunner().invoke(
            cli, [*common, "-o", str(tmp_path / "bad"), "--verify-options", '{"code": {"network": "internet"}}']
        )
    assert as_json.exit_code == 0, as_json.output
    mode = resolve_network_mode("auto")
    warning = None if mode == "namespace" else BLOCK_WARNING
    assert json.loads(as_json.stdout)["code_sandbox"] == {
        "network": LABELS[mode],
        "runs_by_network": {mode: 2},
        "warning": warning,
    }
    assert blocked.exit_code == 0, blocked.output
    flat = " ".join(blocked.output.split())
    assert "code verifier sandbox network: block (sockets disabled in-process only) [2 runs]" in flat
    assert "warning: the sandboxed code ran with the network blocked only inside Python" in flat
    assert """--verify-options '{"code": {"network": "namespace"}}' refuses to run without one""" in flat
    report = json.loads((tmp_path / "block" / "report.json").read_text())
    assert report["code_sandbox"]["runs_by_network"] == {"block": 2} and report["code_sandbox"]["warning"]
    assert refused.exit_code == 1 and "code.network" in refused.output and not (tmp_path / "bad").exists()
