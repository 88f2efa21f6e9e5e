import json

from click.testing import CliRunner

from fusionforge.cli.main import cli


def test_synth_then_build_through_the_cli(tmp_path):
    runner = CliRunner()
    proxy = tmp_path / "proxy"
    synth = runner.invoke(
        cli,
        [
            "sft",
            "synth-vision-proxy",
            "--generate",
            "4",
            "--tasks",
            "count,locate",
            "-o",
            str(proxy),
            "--executor",
            "local",
            "--json",
        ],
    )
    assert synth.exit_code == 0, synth.output
    synth_report = json.loads(synth.stdout)
    assert synth_report["kept"] == 4 and set(synth_report["by_task"]) == {"count", "locate"}

    chats = tmp_path / "chats.jsonl"
    chats.write_text(
        "".join(
            json.dumps(
                {
                    "conversations": [
                        {
                            "from": "human",
                            "value": f"Question number {i}: what is {i} plus {i} in decimal notation please?",
                        },
                        {"from": "gpt", "value": str(2 * i)},
                    ]
                }
            )
            + "\n"
            for i in range(6)
        )
    )
    sft = tmp_path / "sft"
    trajectories = proxy / "trajectories.jsonl"
    build = runner.invoke(
        cli,
        [
            "sft",
            "build",
            f"chat={chats}",
            f"proxy={trajectories}",
            "-o",
            str(sft),
            "--executor",
            "local",
            "--val-fraction",
            "0",
        ],
    )
    assert build.exit_code == 0, build.output
    assert "0 vision parts" in build.stdout and "tool-use share" in build.stdout
    report = json.loads((sft / "report.json").read_text())
    assert report["splits"]["train"]["conversations"] == 10
    assert report["by_source"]["proxy"]["tool_use_share"] == 1.0


def test_cli_errors_are_clean(tmp_path):
    chats = tmp_path / "chats.jsonl"
    chats.write_text(json.dumps({"instruction": "hi", "output": "hello"}) + "\n")
    result = CliRunner().invoke(
        cli, ["sft", "build", str(chats), "-o", str(tmp_path / "o"), "--executor", "local", "--val-fraction", "2"]
    )
    assert result.exit_code == 2 and "Invalid value for '--val-fraction'" in result.output
    result = CliRunner().invoke(
        cli, ["sft", "build", str(chats), "-o", str(tmp_path / "o"), "--executor", "local", "--max-tokens", "4096"]
    )
    assert result.exit_code != 0 and "give --tokenizer PATH" in result.output and not (tmp_path / "o").exists()
    result = CliRunner().invoke(cli, ["sft", "synth-vision-proxy", "-o", str(tmp_path / "p"), "--executor", "local"])
    assert result.exit_code != 0 and "--generate N" in result.output


def test_strict_stops_at_the_first_unreadable_row(tmp_path):
    chats = tmp_path / "chats.jsonl"
    chats.write_text(json.dumps({"instruction": "hi", "output": "hello"}) + "\n" + '{"text": "no chat"}\n')
    result = CliRunner().invoke(
        cli, ["sft", "build", str(chats), "-o", str(tmp_path / "o"), "--executor", "local", "--strict"]
    )
    assert result.exit_code != 0 and f"{chats}:2" in result.output and "unknown_format" in result.output


def test_the_mixture_example_in_the_help_is_a_mixture_file_that_parses(tmp_path):
    import re

    from fusionforge.mixers.mixture import load_mixture

    shown = " ".join(CliRunner().invoke(cli, ["sft", "build", "--help"]).output.split())
    start = shown.index("--mixture FILE")
    mixture_help = shown[start : shown.index("--decontaminate", start)]
    assert "weight" not in mixture_help
    example = re.search(r"e\.g\. '([^']+)'", mixture_help).group(1)
    path = tmp_path / "sft_mix.yaml"
    path.write_text(example + "\n")
    mixture = load_mixture(path)
    assert {name: (s.proportion, s.max_epochs) for name, s in mixture.sources.items()} == {
        "chat": (0.7, None),
        "proxy": (0.3, 4),
    }


SYNTH_ONE = ["sft", "synth-vision-proxy", "--generate", "1", "--tasks", "count", "--executor", "local"]


def test_synthesis_reports_the_isolation_its_sandbox_got(tmp_path):
    from fusionforge.pipelines.core.sandbox import sandbox_mode

    result = CliRunner().invoke(cli, [*SYNTH_ONE, "-o", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert f"sandbox isolation: {sandbox_mode().label()} [1 run]" in flat and "warning" not in flat
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    assert report["sandbox"]["runs_by_mode"] == {"namespaces+cgroup-v1": 1} and report["sandbox"]["warning"] is None


def test_synthesis_refuses_to_run_code_unsandboxed_unless_allowed(tmp_path, without_bubblewrap):
    refused = CliRunner().invoke(cli, [*SYNTH_ONE, "-o", str(tmp_path / "refused")])
    assert refused.exit_code != 0 and "--allow-unsandboxed" in refused.output, refused.output
    assert "bwrap" in refused.output and not (tmp_path / "refused").exists()
    allowed = CliRunner().invoke(cli, [*SYNTH_ONE, "-o", str(tmp_path / "p"), "--allow-unsandboxed"])
    assert allowed.exit_code == 0, allowed.output
    flat = " ".join(allowed.output.split())
    assert "sandbox isolation: none (allowed explicitly" in flat and "warning: the code ran WITHOUT a sandbox" in flat
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    assert report["kept"] == 1 and report["sandbox"]["runs_by_mode"] == {"none+rlimit": 1}
