import math

import pytest

from fusionforge.pipelines.core import executor_choice
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.executor_choice import CROSSOVERS, Crossover, choose_executor
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.core.source import Source

GB = 10**9


@pytest.fixture
def cpus(monkeypatch):
    """Pretend this machine has ``n`` CPUs: ``cpus(n)``."""
    return lambda n: monkeypatch.setattr(executor_choice, "available_cpus", lambda: n)


def test_the_crossover_is_the_fixed_cost_over_what_each_extra_gb_saves():
    costs = Crossover(extra_ray_s=10.0, local_s_per_gb=100.0, ray_cpu_s_per_gb=150.0)
    assert costs.threshold_bytes(2) == pytest.approx(10 / (100 - 150 / 2) * GB)  # 0.4 GB
    assert costs.threshold_bytes(8) == pytest.approx(10 / (100 - 150 / 8) * GB)
    assert costs.threshold_bytes(1) == math.inf  # one CPU: Ray spends more per GB than this process
    for step in CROSSOVERS.values():  # more CPUs never raise the threshold
        assert step.threshold_bytes(64) <= step.threshold_bytes(16) <= step.threshold_bytes(4)


def test_small_work_runs_in_process_and_large_work_on_ray(cpus):
    cpus(16)
    for step, costs in CROSSOVERS.items():
        threshold = costs.threshold_bytes(16)
        assert math.isfinite(threshold), f"the measured {step} costs give Ray a crossover on 16 CPUs"
        small = choose_executor("auto", None, step, int(threshold * 0.9))
        large = choose_executor("auto", None, step, int(threshold * 1.1))
        assert (small.chosen, small.requested, large.chosen, large.requested) == ("local", "auto", "ray", "auto")
        assert f"threshold for {step} on 16 CPUs, no Ray address" in small.reason
        assert small.reason.startswith(executor_choice.human_bytes(int(threshold * 0.9)) + " planned input < ")
        assert " >= " in large.reason


def test_where_ray_never_pays_auto_stays_in_process_at_any_size(cpus, monkeypatch):
    cpus(2)
    never = Crossover(extra_ray_s=10, local_s_per_gb=100, ray_cpu_s_per_gb=200)  # 200 / 2 CPUs: no gain
    monkeypatch.setitem(CROSSOVERS, "filter", never)
    choice = choose_executor("auto", None, "filter", 10**15)
    assert choice.chosen == "local" and "Ray does not pay back its start-up" in choice.reason
    cpus(1)
    one = choose_executor("auto", None, "shard", 10**15)
    assert one.chosen == "local" and "1 CPU" in one.reason


def test_fewer_cpus_given_raise_the_threshold(cpus):
    cpus(16)
    costs = CROSSOVERS["dedupe"]
    size = int((costs.threshold_bytes(16) + costs.threshold_bytes(8)) / 2)  # Ray on 16 CPUs, not on 8
    assert choose_executor("auto", None, "dedupe", size).chosen == "ray"
    assert choose_executor("auto", None, "dedupe", size, num_cpus=8).chosen == "local"
    assert choose_executor("auto", None, "dedupe", size, num_cpus=64).chosen == "ray"  # capped at the 16 there are


def test_an_address_means_ray_and_an_explicit_executor_is_honoured(cpus):
    cpus(2)
    on_cluster = choose_executor("auto", "10.0.0.1:6379", "shard", 10)
    assert (on_cluster.chosen, on_cluster.reason) == ("ray", "Ray cluster address 10.0.0.1:6379 given")
    assert choose_executor("local", None, "shard", 10**15).chosen == "local"
    explicit = choose_executor("ray", None, "shard", 1)
    assert explicit.report() == {"chosen": "ray", "requested": "ray", "reason": "--executor ray given"}


def test_run_settings_weigh_the_input_only_when_the_choice_depends_on_it(cpus):
    cpus(16)

    def unknown() -> int:
        raise AssertionError("the planned size was asked for")

    assert RunSettings(executor="local").choose("shard", unknown)[0].executor == "local"
    assert RunSettings(ray_address="h:1").choose("shard", unknown)[0] == RunSettings(executor="ray", ray_address="h:1")
    run, choice = RunSettings(seed=5).choose("pack", lambda: 1000)
    assert run == RunSettings(executor="local", seed=5) and choice.reason.startswith("1.0 kB planned input < ")


class Sizeless(Source):
    def partitions(self):
        return [0]

    def read(self, partition):
        return iter(())


def test_a_source_that_does_not_know_its_size_asks_for_an_explicit_executor():
    with pytest.raises(ConfigError, match="Sizeless does not know its input's size; give --executor ray or local"):
        RunSettings().choose("shard", Sizeless().planned_bytes)
