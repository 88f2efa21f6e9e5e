"""``--executor auto``: in this process when the work is small for this machine, on Ray otherwise.

Ray costs seconds before the first record (its processes, the dataset's planning and scheduling)
and pays them back only by spreading the records over the machine's CPUs; the in-process executor
uses one CPU and starts at once. So a step is run in process when no cluster is named and its
planned input is under the crossover for this machine's CPUs, and on Ray otherwise. A cluster
address always means Ray, and ``--executor ray|local`` is always honoured.

The crossover of each step comes from a line fitted to measured runs (``bench/executor_crossover.py``,
figures in ``bench/README.md``): Ray's extra fixed cost over the in-process run, the in-process
CPU seconds per GB, and Ray's CPU seconds per GB, spread over C CPUs. Ray wins past
``extra_ray_s / (local_s_per_gb - ray_cpu_s_per_gb / C)`` GB; where that denominator is not positive,
Ray does not win on C CPUs at any size and only a cluster address (or ``--executor ray``) chooses it;
nor on one CPU, where it has nothing to spread the work over.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

AUTO = "auto"
RAY = "ray"
LOCAL = "local"
CHOICES = (AUTO, RAY, LOCAL)


@dataclass(frozen=True)
class Crossover:
    """One step's measured costs on each executor (``bench/executor_crossover.py``)."""

    extra_ray_s: float  # Ray's fixed cost over the in-process run's: start-up, planning, scheduling
    local_s_per_gb: float  # in-process CPU seconds per GB of planned input (one CPU: its wall seconds when idle)
    ray_cpu_s_per_gb: float  # Ray's CPU seconds per GB of planned input, all its processes together

    def threshold_bytes(self, cpus: int) -> float:
        """The planned input above which Ray finishes first on ``cpus`` CPUs (infinite: never)."""
        gain = self.local_s_per_gb - self.ray_cpu_s_per_gb / cpus
        return self.extra_ray_s / gain * 1e9 if gain > 0 else math.inf


# Measured by bench/executor_crossover.py on 2026-12-06 after Ray's partition tasks (issue 16, item 2), on 2
# CPUs shared with other jobs (load 3-9), fitted on CPU seconds; figures and caveats in bench/README.md. On 2
# idle CPUs Ray now pays back from 41-92 MB for shard, dedupe and pack; filter needs more than 2 CPUs. The fit
# assumes Ray gets every CPU: on a busy machine it does not, and the run's wall times had Ray 1.2-3.8x slower.
CROSSOVERS = {
    "shard": Crossover(extra_ray_s=7.4, local_s_per_gb=207, ray_cpu_s_per_gb=254),
    "dedupe": Crossover(extra_ray_s=9.0, local_s_per_gb=561, ray_cpu_s_per_gb=735),
    "filter": Crossover(extra_ray_s=22.9, local_s_per_gb=1065, ray_cpu_s_per_gb=2557),
    "pack": Crossover(extra_ray_s=8.3, local_s_per_gb=475, ray_cpu_s_per_gb=542),
}
# Steps not measured (sft build, synth-vision-proxy, audit) take shard's costs: each reads its records once.
UNMEASURED = "shard"


@dataclass(frozen=True)
class ExecutorChoice:
    """The executor a step runs on, what was asked for and why; kept in ``report.json``."""

    chosen: str
    requested: str
    reason: str

    def report(self) -> dict[str, str]:
        return {"chosen": self.chosen, "requested": self.requested, "reason": self.reason}


def choose_executor(
    requested: str, address: str | None, step: str, planned_bytes: int, num_cpus: int | None = None
) -> ExecutorChoice:
    """The executor for ``step`` over ``planned_bytes`` of input (``num_cpus``: a cap on this machine's CPUs)."""
    if requested != AUTO:
        return ExecutorChoice(requested, requested, f"--executor {requested} given")
    if address:
        return ExecutorChoice(RAY, AUTO, f"Ray cluster address {address} given")
    cpus = min(num_cpus or available_cpus(), available_cpus())
    threshold = CROSSOVERS.get(step, CROSSOVERS[UNMEASURED]).threshold_bytes(cpus)
    size = f"{human_bytes(planned_bytes)} planned input"
    where = f"for {step} on {cpus} CPU{'s' if cpus != 1 else ''}, no Ray address"
    if cpus < 2:
        return ExecutorChoice(LOCAL, AUTO, f"{size}; one CPU leaves Ray nothing to spread the work over {where}")
    if math.isinf(threshold):
        return ExecutorChoice(LOCAL, AUTO, f"{size}; Ray does not pay back its start-up {where}")
    if planned_bytes < threshold:
        return ExecutorChoice(LOCAL, AUTO, f"{size} < {human_bytes(threshold)} threshold {where}")
    return ExecutorChoice(RAY, AUTO, f"{size} >= {human_bytes(threshold)} threshold {where}")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container's or taskset's limit)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def files_bytes(paths: Iterable[str | os.PathLike]) -> int:
    """The total size of ``paths`` (files; ones that vanished count nothing)."""
    total = 0
    for path in paths:
        try:
            total += os.path.getsize(path)
        except OSError:
            continue
    return total


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
