"""Options are checked up front (issue 13): a number out of range is a usage error (exit 2, the option
named, nothing written) on the command line, in a recipe and in the config behind it; a run that fails
exits 1.

Every case fails before any work (click parses the options first), so nothing here starts Ray. The
library imports sit inside the tests, so this file also runs against older trees whose modules differ.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from fusionforge.cli.main import cli

# (command, option, value): the unchecked options of issue 13, on every command that has them.
ISSUE_CASES = [
    ("shard", "--timeout", "0"),
    ("shard", "--max-pixels", "-1"),
    ("shard", "--shard-count", "-5"),
    ("shard", "--shard-size", "-1"),
    ("shard", "--partition-mb", "0"),
    ("shard", "--num-cpus", "-2"),
    ("dedupe", "--timeout", "0"),
    ("dedupe", "--shard-count", "-5"),
    ("dedupe", "--shard-size", "-1"),
    ("dedupe", "--num-cpus", "-2"),
    ("filter", "--shard-count", "-5"),
    ("filter", "--shard-size", "-1"),
    ("filter", "--num-cpus", "-2"),
    ("pack", "--num-cpus", "-2"),
    ("audit", "--num-cpus", "-2"),
    ("sft build", "--partition-mb", "0"),
    ("sft build", "--num-cpus", "-2"),
    ("sft synth-vision-proxy", "--timeout", "0"),
    ("sft synth-vision-proxy", "--num-cpus", "-2"),
    ("rft run", "--timeout", "0"),
    ("run", "--num-cpus", "-2"),
    ("fetch", "--timeout", "0"),
    ("fetch", "--max-pixels", "-1"),
    ("fetch", "--partition-size", "0"),
]
# Numbers an option may take whole: each with the reason it has no range.
UNBOUNDED = {
    ("rft", "run", "--round-temperature-step"): "negative cools later rounds; the temperature is clamped at 0",
    (
        "filter",
        "--aesthetic-threshold",
    ): "a score head's output has no fixed range (LAION's aesthetic scores: about 1-10)",
}


RAW = '{"id": "a", "text": "one short document"}\n{"id": "b", "text": "and another one"}\n'


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """A real shard output (in-process), so a command that got past its options would run on it and write."""
    folder = tmp_path_factory.mktemp("earlier")
    (folder / "raw.jsonl").write_text(RAW)
    made = CliRunner().invoke(
        cli, ["shard", str(folder / "raw.jsonl"), "-o", str(folder / "out"), "--executor", "local"]
    )
    assert made.exit_code == 0, made.output
    return folder / "out"


@pytest.fixture
def place(tmp_path: Path, earlier: Path) -> dict[str, Path]:
    """Inputs each command accepts as they are (a run that got past its options would write ``out``)."""
    raw = tmp_path / "raw.jsonl"
    raw.write_text(RAW)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "p", "question": "1+1?", "answer": "2", "task": "numeric"}\n')
    recipe = tmp_path / "recipe.yaml"
    steps = [{"shard": {"inputs": [str(raw)], "output": str(tmp_path / "out")}}]
    recipe.write_text(
        yaml.safe_dump({"output": str(tmp_path / "run"), "defaults": {"executor": "local"}, "steps": steps})
    )
    return {"raw": raw, "prompts": prompts, "earlier": earlier, "recipe": recipe, "out": tmp_path / "out"}


def argv(command: str, place: dict[str, Path]) -> list[str]:
    """The words of a command that would run (in-process, no Ray) but for the option under test."""
    out = ["-o", str(place["out"])]
    local = ["--executor", "local"]
    return {
        "shard": ["shard", str(place["raw"]), *out, *local],
        "dedupe": ["dedupe", str(place["earlier"]), *out, *local],
        "filter": ["filter", str(place["earlier"]), *out, *local],
        "pack": ["pack", str(place["earlier"]), *out, *local],
        "audit": ["audit", str(place["earlier"]), *local],
        "sft build": ["sft", "build", str(place["raw"]), *out, *local],
        "sft synth-vision-proxy": ["sft", "synth-vision-proxy", "--generate", "1", *out, *local],
        "rft run": ["rft", "run", str(place["prompts"]), *out, "--model", "m", "--endpoint", "http://127.0.0.1:9/v1"],
        "run": ["run", str(place["recipe"])],
        "fetch": ["fetch", str(place["raw"]), *out],
    }[command]


@pytest.mark.parametrize(("command", "option", "value"), ISSUE_CASES, ids=lambda v: str(v))
def test_an_option_out_of_range_is_a_usage_error_that_names_it(place, command, option, value):
    result = CliRunner().invoke(cli, [*argv(command, place), option, value])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output, result.output
    assert "Traceback" not in result.output
    assert not place["out"].exists()  # no output folder, so no ledger, no report
    assert not (place["recipe"].parent / "run").exists()


def test_a_config_error_raised_by_the_library_exits_2_and_names_the_options(place):
    """No size limit and no count: every record in one shard; the config refuses it before any work."""
    result = CliRunner().invoke(cli, [*argv("shard", place), "--shard-size", "0"])
    assert result.exit_code == 2, result.output
    assert "--shard-size" in result.output and "--shard-count" in result.output
    assert "Traceback" not in result.output and not place["out"].exists()


def write_recipe(place: dict[str, Path], steps: list) -> Path:
    recipe = place["recipe"]
    top = {"output": str(recipe.parent / "run"), "defaults": {"executor": "local"}, "steps": steps}
    recipe.write_text(yaml.safe_dump(top, sort_keys=False))
    return recipe


@pytest.mark.parametrize(
    ("step", "named"),
    [
        ({"shard_count": -5}, "--shard-count"),
        ({"timeout": 0}, "--timeout"),
        ({"max_pixels": -1}, "--max-pixels"),
        ({"partition_mb": 0}, "--partition-mb"),
        ({"shard_size": -1}, "--shard-size"),
        ({"num_cpus": -2}, "--num-cpus"),
        ({"video_check": "skim"}, "--video-check"),
        ({"shard_cuont": 5}, "shard_cuont"),  # an unknown key is a configuration error too
    ],
    ids=lambda v: str(v),
)
def test_a_recipe_with_a_bad_value_exits_2_naming_the_key_before_any_step_runs(place, step, named):
    first = {"shard": {"inputs": [str(place["raw"])]}}
    later = {"shard": {"inputs": [str(place["raw"])], "name": "again", **step}}  # step 2: step 1 must not run either
    result = CliRunner().invoke(cli, ["run", str(write_recipe(place, [first, later]))])
    flat = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert named in flat and "step 2" in flat, result.output
    assert "Traceback" not in result.output
    assert not (place["recipe"].parent / "run").exists()


def test_a_failed_step_keeps_its_exit_status_in_a_recipe(place, monkeypatch):
    from fusionforge.pipelines.core.errors import RunError

    def fail(*args, **kwargs):
        raise RunError("the shard job failed: a worker died")

    monkeypatch.setattr("fusionforge.pipelines.shard.run_shard", fail)
    result = CliRunner().invoke(cli, ["run", str(write_recipe(place, [{"shard": {"inputs": [str(place["raw"])]}}]))])
    assert result.exit_code == 1, result.output
    assert "step 1 (shard) failed" in result.output and "a worker died" in result.output


def ray_wrapped(error: Exception, as_cause: bool) -> Exception:
    """``error`` as a Ray task raises it in the driver: a ``RayTaskError``, or one that is also an instance of
    ``error``'s class (its text then Ray's traceback)."""
    from ray.exceptions import RayTaskError

    wrapped = RayTaskError("read_partition", "Traceback (most recent call last):\n  ...", error)
    return wrapped.as_instanceof_cause() if as_cause else wrapped


@pytest.mark.parametrize(
    ("kind", "wrap", "code"),
    [
        ("RunError", None, 1),
        ("BadRecord", None, 1),
        ("ConfigError", None, 2),
        ("MissingDependency", None, 2),
        ("RunError", "ray", 1),
        ("ConfigError", "ray", 2),
        ("RunError", "ray-as-cause", 1),
        ("ConfigError", "ray-as-cause", 2),
        ("ConfigError", "chained", 2),
    ],
)
def test_a_run_that_fails_exits_1_and_a_configuration_error_2(place, monkeypatch, kind, wrap, code):
    from fusionforge.pipelines.core import errors

    error = (
        errors.MissingDependency("fasttext", "lang") if kind == "MissingDependency" else getattr(errors, kind)("boom")
    )
    message = str(error)

    def fail(*args, **kwargs):
        if wrap == "chained":  # e.g. Ray Data's own error raised from the task's
            try:
                raise error
            except errors.FusionforgeError as exc:
                raise RuntimeError("the dataset failed") from exc
        raise ray_wrapped(error, wrap == "ray-as-cause") if wrap else error

    monkeypatch.setattr("fusionforge.pipelines.shard.run_shard", fail)
    result = CliRunner().invoke(cli, argv("shard", place))
    assert result.exit_code == code, result.output
    assert f"Error: {message}" in result.output and "Traceback" not in result.output, result.output


def load(dotted: str) -> type:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


# (config class, the arguments it needs, the field out of range and its value): the issue's cases in the library.
LIBRARY_CASES = [
    ("fusionforge.pipelines.core.settings:RunSettings", {}, "num_cpus", -2),
    ("fusionforge.pipelines.shard:ShardConfig", {"inputs": ("raw.jsonl",), "output": "o"}, "timeout_s", 0.0),
    ("fusionforge.pipelines.shard:ShardConfig", {"inputs": ("raw.jsonl",), "output": "o"}, "max_pixels", -1),
    ("fusionforge.pipelines.shard:ShardConfig", {"inputs": ("raw.jsonl",), "output": "o"}, "shard_count", -5),
    ("fusionforge.pipelines.shard:ShardConfig", {"inputs": ("raw.jsonl",), "output": "o"}, "shard_size_mb", -1.0),
    ("fusionforge.pipelines.shard:ShardConfig", {"inputs": ("raw.jsonl",), "output": "o"}, "partition_mb", 0.0),
    ("fusionforge.pipelines.dedupe.config:DedupeConfig", {"input": "i", "output": "o"}, "timeout_s", 0.0),
    ("fusionforge.pipelines.dedupe.config:DedupeConfig", {"input": "i", "output": "o"}, "shard_count", -5),
    ("fusionforge.pipelines.transform:TransformConfig", {"input": "i", "output": "o"}, "shard_size_mb", -1.0),
    ("fusionforge.pipelines.writers.webdataset_writer:ShardLayout", {"out_dir": "o"}, "shard_count", -5),
    ("fusionforge.mixers.sft.config:BuildConfig", {"inputs": ("chats.jsonl",), "output": "o"}, "partition_mb", 0.0),
    ("fusionforge.mixers.sft.synth_job:SynthConfig", {"inputs": (), "output": "o", "generate": 1}, "timeout_s", 0.0),
    ("fusionforge.pipelines.fetch.config:FetchConfig", {"listings": ("u.jsonl",), "output": "o"}, "per_host", 0),
    ("fusionforge.pipelines.fetch.config:FetchConfig", {"listings": ("u.jsonl",), "output": "o"}, "max_bytes", 0),
]


@pytest.mark.parametrize(("dotted", "given", "name", "value"), LIBRARY_CASES, ids=lambda v: str(v))
def test_the_config_refuses_what_the_option_refuses(dotted, given, name, value):
    from fusionforge.pipelines.core.errors import ConfigError

    with pytest.raises(ConfigError, match=name):
        load(dotted)(**given, **{name: value})


def test_a_config_built_from_options_refuses_a_bad_run_setting():
    from fusionforge.pipelines.core.errors import ConfigError
    from fusionforge.pipelines.core.settings import build_config
    from fusionforge.pipelines.shard import ShardConfig

    with pytest.raises(ConfigError, match="num_cpus"):
        build_config(ShardConfig, {"inputs": ("raw.jsonl",), "output": "o", "num_cpus": -2})


def leaf_commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


def numeric_options():
    for path, command in leaf_commands(cli):
        for param in command.params:
            if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
                yield path, command, param


def test_every_number_an_option_takes_has_a_range():
    """A new numeric option must say what it takes (``ranged``), or be listed in UNBOUNDED with why."""
    missing, listed = [], set()
    for path, _, param in numeric_options():
        key = (*path, max(param.opts, key=len))
        if key in UNBOUNDED:
            listed.add(key)
        elif not isinstance(param.type, (click.IntRange, click.FloatRange)):
            missing.append(" ".join(key))
    assert not missing, f"numeric options without a range: {missing}"
    assert listed == set(UNBOUNDED), f"UNBOUNDED lists options that are gone: {set(UNBOUNDED) - listed}"


# The configs each command builds from its options (``build_config``: a field takes the option of its name).
CONFIGS = {
    ("shard",): (
        "fusionforge.pipelines.shard:ShardConfig",
        "fusionforge.pipelines.readers.base:ReaderOptions",
        "fusionforge.pipelines.core.settings:RunSettings",
    ),
    ("dedupe",): (
        "fusionforge.pipelines.dedupe.config:DedupeConfig",
        "fusionforge.pipelines.core.settings:RunSettings",
    ),
    ("filter",): ("fusionforge.pipelines.transform:TransformConfig", "fusionforge.pipelines.core.settings:RunSettings"),
    ("pack",): ("fusionforge.mixers.packing.job:PackConfig", "fusionforge.pipelines.core.settings:RunSettings"),
    ("audit",): ("fusionforge.mixers.audit.api:AuditOptions", "fusionforge.pipelines.core.settings:RunSettings"),
    ("sft", "build"): ("fusionforge.mixers.sft.config:BuildConfig", "fusionforge.pipelines.core.settings:RunSettings"),
    ("sft", "synth-vision-proxy"): (
        "fusionforge.mixers.sft.synth_job:SynthConfig",
        "fusionforge.pipelines.core.settings:RunSettings",
    ),
    ("rft", "run"): (
        "fusionforge.rft.config:RFTConfig",
        "fusionforge.rft.clients:Sampling",
        "fusionforge.pipelines.core.settings:RunSettings",
    ),
    ("filters", "train-fasttext"): ("fusionforge.filters.text.fasttext_train:TrainConfig",),
    ("fetch",): ("fusionforge.pipelines.fetch.config:FetchConfig", "fusionforge.pipelines.core.settings:RunSettings"),
    ("demo",): ("fusionforge.pipelines.core.settings:RunSettings",),
    ("run",): ("fusionforge.pipelines.core.settings:RunSettings",),
}


def test_an_option_and_the_config_field_it_fills_share_one_bound():
    """The command line and a library call or recipe refuse the same values: one ``Bound`` for both."""
    import dataclasses

    from fusionforge.cli.options import ranged
    from fusionforge.pipelines.core.bounds import BOUND

    checked, differ = 0, []
    for path, _, param in numeric_options():
        for dotted in CONFIGS.get(path, ()):
            fields = {f.name: f for f in dataclasses.fields(load(dotted))}
            bound = fields[param.name].metadata.get(BOUND) if param.name in fields else None
            if bound is not None:
                checked += 1
                if ranged(bound) is not param.type:
                    differ.append(f"{' '.join(path)} {param.opts[0]} vs {dotted} {param.name}")
    assert not differ, differ
    assert checked > 60  # most options fill a config field; the rest are stage parameters or client settings
