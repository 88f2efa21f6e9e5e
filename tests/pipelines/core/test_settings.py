from dataclasses import dataclass, field

import pytest

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import RunSettings, build_config, check_known, flat_config


@dataclass(frozen=True)
class Inner:
    depth: int = 1


@dataclass(frozen=True)
class StepConfig:
    output: str
    size: int = 3
    inner: Inner = field(default_factory=Inner)
    run: RunSettings = RunSettings(executor="local")


def test_an_unknown_executor_fails_when_the_settings_are_made():
    with pytest.raises(ConfigError, match="unknown executor 'spark'; use 'auto', 'ray', 'local'"):
        RunSettings(executor="spark")


def test_build_config_takes_fields_by_name_and_run_settings_into_run():
    options = {"output": "o", "size": 5, "seed": 7, "resume": True, "as_json": True, "fmt": "x"}
    cfg = build_config(StepConfig, options)
    assert cfg == StepConfig("o", 5, run=RunSettings(executor="local", seed=7, resume=True))
    assert build_config(StepConfig, {"output": "o"}).run == RunSettings(executor="local")  # the class's own default
    given = RunSettings(executor="ray", strict=True)
    assert build_config(StepConfig, {"output": "o", "run": given, "seed": 3}).run == given
    assert build_config(RunSettings, {"num_cpus": 2, "output": "o"}) == RunSettings(num_cpus=2)


def test_flat_config_spreads_the_run_settings_among_the_fields():
    flat = flat_config(StepConfig("o", run=RunSettings(seed=4)))
    assert list(flat) == ["output", "size", "inner", "executor", "ray_address", "num_cpus", "resume", "strict", "seed"]
    assert flat["inner"] == {"depth": 1} and flat["seed"] == 4 and flat["executor"] == "auto"
    assert build_config(StepConfig, {**flat, "inner": Inner()}) == StepConfig("o", run=RunSettings(seed=4))


def test_check_known_names_the_unknown_keys_and_the_known_ones():
    check_known(StepConfig, {"output": "o", "executor": "ray"}, "step")
    with pytest.raises(ConfigError, match=r"unknown step settings \['sise'\]; known: .*executor.*size"):
        check_known(StepConfig, {"output": "o", "sise": 2}, "step")
