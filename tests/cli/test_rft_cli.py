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
    assert result.exit_code == 2 and "needs --endpoint" in result.output
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
    assert result.exit_code == 2 and "round-k-factor" in result.output
    assert not (tmp_path / "o").exists()


def _code_run(tmp_path, *options: str) -> dict[str, object]:
    """``rft run`` on one code prompt (k=2) with each option list; the CliRunner result per output name."""
    prompts = tmp_path / "code.jsonl"
    prompts.write_text(
        json.dumps({"id": "add", "question": "Write add(a, b).", "task": "code", "answer": "assert add(2, 3) == 5"})
        + "\n"
    )
    answer = "```python\ndef add(a, b):\n    return a + b\n```"
    results = {}
    with ScriptedServer(lambda call: Reply(answer)) as server:
        common = ["rft", "run", str(prompts), "--endpoint", server.url, "--model", "scripted", "-k", "2"]
        for name, extra in options:
            args = [*common, "--verifier-workers", "1", "-o", str(tmp_path / name), *extra]
            results[name] = CliRunner().invoke(cli, args)
    return results


def test_the_code_sandbox_isolation_is_reported_and_its_limits_checked(tmp_path):
    from fusionforge.pipelines.core.sandbox import sandbox_mode

    runs = _code_run(
        tmp_path,
        ("json", ["--json"]),
        ("text", []),
        ("bad", ["--verify-options", '{"code": {"memory_mb": 1}}']),
    )
    assert runs["json"].exit_code == 0, runs["json"].output
    mode = sandbox_mode()
    assert json.loads(runs["json"].stdout)["code_sandbox"] == {
        "isolation": mode.label(),
        "runs_by_mode": {"namespaces+cgroup-v1": 2},
        "warning": None,
    }
    flat = " ".join(runs["text"].output.split())
    assert f"code verifier sandbox isolation: {mode.label()} [2 runs]" in flat and "warning" not in flat
    bad = runs["bad"]
    assert bad.exit_code != 0 and "--verify-options code" in bad.output and "memory_mb" in bad.output
    assert not (tmp_path / "bad").exists()


def test_code_prompts_are_refused_without_a_sandbox_unless_allowed(tmp_path, without_bubblewrap):
    runs = _code_run(tmp_path, ("refused", []), ("allowed", ["--allow-unsandboxed"]))
    refused = runs["refused"]
    assert refused.exit_code != 0 and "--allow-unsandboxed" in refused.output and not (tmp_path / "refused").exists()
    assert runs["allowed"].exit_code == 0, runs["allowed"].output
    flat = " ".join(runs["allowed"].output.split())
    assert "warning: the code ran WITHOUT a sandbox" in flat
    report = json.loads((tmp_path / "allowed" / "report.json").read_text())
    assert report["code_sandbox"]["runs_by_mode"] == {"none+rlimit": 2} and report["samples"]["by_status"] == {
        "pass": 2
    }
