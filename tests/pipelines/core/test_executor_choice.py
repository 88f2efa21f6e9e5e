import math

import pytest

from fusionforge.pipelines.core import executor_choice
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.executor_choice import CROSSOVERS, Crossover, choose_executor
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.core.source import Source

GB = 10**9


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(executor_choice, "available_cpus", lambda: 2)


def test_the_crossover_is_the_fixed_cost_over_what_each_extra_gb_saves():
    costs = Crossover(extra_ray_s=10.0, local_s_per_gb=100.0, ray_cpu_s_per_gb=150.0)
    assert costs.threshold_bytes(2) == pytest.approx(10 / (100 - 150 / 2) * GB)  # 0.4 GB
    assert costs.threshold_bytes(8) == pytest.approx(10 / (100 - 150 / 8) * GB)
    assert costs.threshold_bytes(1) == math.inf  # one CPU: Ray spends more per GB than this process
    for step in CROSSOVERS.values():  # more CPUs never raise the threshold
        assert step.threshold_bytes(64) <= step.threshold_bytes(16) <= step.threshold_bytes(4)


def test_small_work_runs_in_process_and_large_work_on_ray(two_cpus):
    threshold = CROSSOVERS["dedupe"].threshold_bytes(2)
    assert math.isfinite(threshold), "the measured dedupe crossover on 2 CPUs"
    small = choose_executor("auto", None, "dedupe", int(threshold * 0.9))
    large = choose_executor("auto", None, "dedupe", int(threshold * 1.1))
    assert (small.chosen, small.requested, large.chosen, large.requested) == ("local", "auto", "ray", "auto")
    assert "threshold for dedupe on 2 CPUs, no Ray address" in small.reason
    assert small.reason.startswith(executor_choice.human_bytes(int(threshold * 0.9)) + " planned input < ")
    assert " >= " in large.reason


def test_fewer_cpus_given_raise_the_threshold(two_cpus):
    size = int(CROSSOVERS["shard"].threshold_bytes(2) * 1.5)
    assert choose_executor("auto", None, "shard", size).chosen == "ray"
    assert choose_executor("auto", None, "shard", size, num_cpus=1).chosen == "local"
    assert choose_executor("auto", None, "shard", size, num_cpus=64).chosen == "ray"  # capped at the 2 there are


def test_an_address_means_ray_and_an_explicit_executor_is_honoured(two_cpus):
    on_cluster = choose_executor("auto", "10.0.0.1:6379", "shard", 10)
    assert (on_cluster.chosen, on_cluster.reason) == ("ray", "Ray cluster address 10.0.0.1:6379 given")
    assert choose_executor("local", None, "shard", 10**15).chosen == "local"
    explicit = choose_executor("ray", None, "shard", 1)
    assert explicit.report() == {"chosen": "ray", "requested": "ray", "reason": "--executor ray given"}


def test_run_settings_weigh_the_input_only_when_the_choice_depends_on_it(two_cpus):
    def unknown() -> int:
        raise AssertionError("the planned size was asked for")

    assert RunSettings(executor="local").choose("shard", unknown)[0].executor == "local"
    assert RunSettings(ray_address="h:1").choose("shard", unknown)[0] == RunSettings(executor="ray", ray_address="h:1")
    run, choice = RunSettings(seed=5).choose("pack", lambda: 1000)
    assert run == RunSettings(executor="local", seed=5) and choice.reason.startswith("1.0 kB planned input <")


class Sizeless(Source):
    def partitions(self):
        return [0]

    def read(self, partition):
        return iter(())


def test_a_source_that_does_not_know_its_size_asks_for_an_explicit_executor():
    with pytest.raises(ConfigError, match="Sizeless does not know its input's size; give --executor ray or local"):
        RunSettings().choose("shard", Sizeless().planned_bytes)
