"""``fusionforge run``: recipes chain the real commands, are checked up front, and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from fusionforge.cli.main import cli


def write_recipe(folder: Path, steps: list, **top) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump({"output": str(folder / "run"), **top, "steps": steps}, sort_keys=False))
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def chain(sample_corpus, tmp_path_factory):
    """shard -> dedupe -> filter -> pack -> audit on the sample corpus, in-process."""
    folder = tmp_path_factory.mktemp("recipe")
    sources = {name: sample_corpus[name] for name in ("web", "photos", "pairs")}
    recipe = write_recipe(
        folder,
        [
            {"shard": {"inputs": sources, "shard_count": 50}},
            {"dedupe": {"keep": "longest", "text_threshold": 0.7}},
            {"filter": {"set": ["text_gopher_quality_v1.min_words=10"]}},
            {"pack": {"seq_len": 2048, "vision_ratio": 0.1}},
            {"audit": {"html": str(folder / "run" / "report.html"), "json": True}},
        ],
        defaults={"executor": "local", "seed": 3},
    )
    result = invoke("run", str(recipe))
    assert result.exit_code == 0, result.output
    return folder, recipe, result.output


def test_each_step_reads_the_previous_output_and_the_audit_sees_the_whole_chain(chain):
    folder, _, printed = chain
    run = folder / "run"
    for step, previous in (("dedupe", "shard"), ("filter", "dedupe"), ("pack", "filter")):
        assert (run / step / "_SUCCESS").exists()
        config = yaml.safe_load((run / step / "config.yaml").read_text())
        assert str(run / previous) in json.dumps(config), step
    assert (run / "report.html").stat().st_size > 10_000
    assert "recipe finished: 5 steps" in " ".join(printed.split())
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert [s["name"] for s in resolved["steps"]] == ["shard", "dedupe", "filter", "pack", "audit"]
    assert "--keep longest" in resolved["steps"][1]["command"]


def test_a_recipe_step_gives_what_the_command_gives(chain, tmp_path):
    folder, _, _ = chain
    run = folder / "run"
    direct = tmp_path / "direct"
    result = invoke(
        "dedupe",
        str(run / "shard"),
        "-o",
        str(direct),
        "--keep",
        "longest",
        "--text-threshold",
        "0.7",
        "--executor",
        "local",
        "--seed",
        "3",
    )
    assert result.exit_code == 0, result.output
    for name in ("ledger.parquet", "clusters.parquet", "manifest.parquet"):
        ours, theirs = pq.read_table(run / "dedupe" / name), pq.read_table(direct / name)
        columns = [c for c in ours.column_names if c not in ("shard", "path")]
        assert ours.select(columns).equals(theirs.select(columns)), name
    assert (
        pq.read_table(direct / "ledger.parquet").column("reason").null_count
        < pq.read_table(direct / "ledger.parquet").num_rows
    )  # the chain really removed duplicates


def test_a_rerun_names_the_failing_step_and_resume_keeps_the_outputs(chain):
    folder, recipe, _ = chain
    manifest = (folder / "run" / "shard" / "manifest.parquet").read_bytes()
    again = CliRunner().invoke(cli, ["run", str(recipe)])
    assert again.exit_code == 2  # the output folder is taken: a configuration error, as the step's own
    assert "step 1 (shard) failed" in again.output and "--resume" in again.output
    resumed = invoke("run", str(recipe), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert (folder / "run" / "shard" / "manifest.parquet").read_bytes() == manifest


def test_mistakes_are_reported_before_anything_runs(tmp_path):
    (tmp_path / "raw.jsonl").write_text('{"id": 1, "text": "hello"}\n')
    cases = {
        "text_treshold": (
            [{"shard": {"inputs": [str(tmp_path / "raw.jsonl")]}}, {"dedupe": {"text_treshold": 0.7}}],
            "step 2",
        ),
        "unknown command 'dedup'": ([{"dedup": {"inputs": [str(tmp_path)]}}], "step 1"),
        "name a command, e.g. 'sft build'": ([{"sft": {"inputs": [str(tmp_path)]}}], "step 1"),
        "cannot be a recipe step": ([{"demo": {}}], "step 1"),
        "the first step needs 'inputs'": ([{"dedupe": {}}], "step 1"),
        "a second step named 'dedupe'": ([{"dedupe": {"inputs": str(tmp_path)}}, {"dedupe": {}}], "step 2"),
        "is a flag": ([{"dedupe": {"inputs": str(tmp_path), "no_verify": "yes"}}], "step 1"),
    }
    for message, (steps, where) in cases.items():
        result = CliRunner().invoke(cli, ["run", str(write_recipe(tmp_path, steps))])
        flat = " ".join(result.output.split())
        assert result.exit_code != 0 and message in flat and where in flat, (message, result.output)
        assert not (tmp_path / "run").exists()
    typo = CliRunner().invoke(cli, ["run", str(write_recipe(tmp_path, cases["text_treshold"][0]))])
    assert "text_threshold" in typo.output  # the known options are listed


def test_flags_lists_sources_and_overrides_become_the_commands_words(tmp_path):
    recipe = write_recipe(
        tmp_path,
        [
            {"shard": {"inputs": {"web": "raw/web.jsonl", "pets": "raw/pets/"}, "strict": True}},
            {"dedupe": {"verify": False, "casefold": True, "only": ["text", "images"], "name": "dd"}},
            {"filter": {"set": ["a.b=1", "c.d=2"], "output": str(tmp_path / "elsewhere")}},
            {"audit": {}},
        ],
        defaults={"seed": 7, "keep": "first"},
    )
    result = invoke("run", str(recipe), "--dry-run", "--ray-address", "10.0.0.1:6379", "--resume")
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines() if "fusionforge" in line]
    shard, dedupe, filtering, audit = lines
    assert "web=raw/web.jsonl pets=raw/pets/" in shard and "--strict" in shard and "--seed 7" in shard
    assert "--no-verify" in dedupe and "--no-casefold" not in dedupe and "--keep first" in dedupe
    assert "--only text --only images" in dedupe and f"--output {tmp_path / 'run' / 'dd'}" in dedupe
    assert "--set a.b=1 --set c.d=2" in filtering and str(tmp_path / "run" / "dd") in filtering
    assert "--keep" not in filtering  # defaults reach only the steps that have the option
    assert all("--ray-address 10.0.0.1:6379" in line for line in lines)
    assert "--resume" in shard and "--resume" not in audit
    assert f"{tmp_path / 'run' / 'dd'} {tmp_path / 'elsewhere'}" in audit  # the audit reads every earlier output
    assert not (tmp_path / "run").exists()


def test_a_step_that_exits_non_zero_stops_the_recipe(sample_corpus, tmp_path):
    recipe = write_recipe(
        tmp_path,
        [
            {"shard": {"inputs": {"pairs": sample_corpus["pairs"]}}},
            {"audit": {"vision_ratio": 0.9, "vision_tolerance": 0.01, "fail_on_deviation": True}},
            {"dedupe": {"inputs": str(tmp_path / "run" / "shard")}},
        ],
        defaults={"executor": "local"},
    )
    result = CliRunner().invoke(cli, ["run", str(recipe)])
    assert result.exit_code == 3, result.output
    assert "step 2 (audit) exited with status 3" in " ".join(result.output.split())
    assert (tmp_path / "run" / "shard" / "_SUCCESS").exists() and not (tmp_path / "run" / "dedupe").exists()


COUNT_RAY_STARTS = """
import sys
import ray

starts = []
start = ray.init


def counted(*args, **kwargs):
    starts.append(kwargs.get("address"))
    return start(*args, **kwargs)


ray.init = counted
from fusionforge.cli.main import cli

try:
    cli.main(sys.argv[1:], prog_name="fusionforge", standalone_mode=False)
finally:
    print("RAY_STARTS", len(starts))
"""


@pytest.mark.slow
@pytest.mark.ray
def test_a_recipe_on_ray_starts_one_ray_runtime_for_all_its_steps(sample_corpus, tmp_path):
    recipe = write_recipe(
        tmp_path,
        [{"shard": {"inputs": {"web": sample_corpus["web"]}, "shard_count": 4}}, {"dedupe": {}}, {"filter": {}}],
    )
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-c", COUNT_RAY_STARTS, "run", str(recipe), "--executor", "ray", "--num-cpus", "2"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("RAY_STARTS")[1].split()[0] == "1"
    for step in ("shard", "dedupe", "filter"):
        report = json.loads((tmp_path / "run" / step / "report.json").read_text())
        assert report["executor"] == {"chosen": "ray", "requested": "ray", "reason": "--executor ray given"}
