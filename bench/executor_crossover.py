"""Where Ray starts to pay: each step on both executors, whole processes, at a few input sizes.

`--executor auto` picks the in-process executor for work that is small for the machine and Ray
otherwise (``pipelines/core/executor_choice.py``). Its thresholds come from this script: for each
size, the corpus of ``bench/dedupe.py`` goes through ``shard -> dedupe -> filter -> pack`` (each
step reads the previous step's in-process output), and each step runs as its own
``fusionforge`` process once with ``--executor local`` and once with ``--executor ray`` (Ray's
start-up included, as a user pays it). Wall seconds and CPU seconds (the command and every process
it started, Ray's included) are recorded. Per step and executor a line ``CPU seconds = a + b * GB``
is fitted over the sizes (CPU seconds, because on a shared machine the wall time measures the load
as much as the work); in process one CPU does the work, Ray spreads it over C CPUs:

    extra_ray_s     = a_ray / C_here - a_local        (Ray's fixed cost in wall seconds)
    crossover_gb(C) = extra_ray_s / (b_local - b_ray / C)      (no crossover when the divisor is <= 0)

The fitted constants are printed in the form ``executor_choice.py`` keeps them, with the measured
and predicted crossovers for this machine's CPUs.

    python bench/executor_crossover.py --docs 2000 10000 40000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedupe import make_corpus  # noqa: E402
from dedupe_memory import watch  # noqa: E402

STEPS = ("shard", "dedupe", "filter", "pack")
EXECUTORS = ("local", "ray")


def input_bytes(step: str, source: Path) -> int:
    """What ``auto`` weighs: the raw files for ``shard``, the input's shards for the later steps."""
    folder = source if step == "shard" else source / "shards"
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def step_command(step: str, source: Path, out: Path, executor: str) -> list[str]:
    cli = [sys.executable, "-m", "fusionforge.cli"]
    common = ["-o", str(out), "--executor", executor]
    if step == "shard":
        return [*cli, "shard", f"bench={source}", *common, "--shard-count", "64", "--partition-mb", "4", "--json"]
    if step == "dedupe":
        return [*cli, "dedupe", str(source), *common, "--only", "text", "--json"]
    if step == "filter":
        return [*cli, "filter", str(source), *common, "--json"]
    return [*cli, "pack", str(source), *common, "--seq-len", "2048", "--json"]


def fit(sizes_gb: list[float], seconds: list[float]) -> tuple[float, float]:
    """Least-squares ``a + b * GB``; the intercept is kept >= 0."""
    b, a = np.polyfit(sizes_gb, seconds, 1)
    return max(float(a), 0.0), float(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[2000, 10_000, 40_000])
    parser.add_argument("--repeat", type=int, default=1, help="runs per step, executor and size (the fastest counts)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the measurements here")
    parser.add_argument("--from-json", type=Path, default=None, help="fit the measurements of an earlier run")
    parser.add_argument(
        "--executors",
        nargs="+",
        choices=EXECUTORS,
        default=list(EXECUTORS),
        help="time only these (one alone: no fit; each step reads the previous step's output of the first)",
    )
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    if args.from_json:
        rows = json.loads(args.from_json.read_text())
    else:
        rows = measure_all(args.docs, args.repeat, tuple(args.executors))
        if args.json_out:
            args.json_out.write_text(json.dumps(rows, indent=1))
    if all(executor in row for row in rows for executor in EXECUTORS):
        report_fit(rows, cpus)


def measure_all(docs: list[int], repeat: int, executors: tuple[str, ...] = EXECUTORS) -> list[dict]:
    """Every step on ``executors`` at each size; one row per size and step."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    rows = []
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} CPUs", flush=True)
    print("| documents | step | input MB | local s (CPU s) | ray s (CPU s) | ray / local wall |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for n in docs:
        work = Path(tempfile.mkdtemp(prefix="ff-bench-crossover-"))
        try:
            make_corpus(work / "corpus", n)
            source = work / "corpus"
            for step in STEPS:
                size = input_bytes(step, source)
                result = {"docs": n, "step": step, "bytes": size}
                for executor in executors:
                    runs = []
                    for attempt in range(repeat):
                        out = work / f"{step}-{executor}-{attempt}"
                        run = watch(step_command(step, source, out, executor))
                        runs.append((run.seconds, run.cpu_s))
                        if executor != executors[0] or attempt:
                            shutil.rmtree(out)
                    result[executor] = min(runs)
                rows.append(result)
                cells = [f"{result[e][0]:.1f} ({result[e][1]:.1f})" if e in result else "-" for e in EXECUTORS]
                ratio = f"{result['ray'][0] / result['local'][0]:.2f}" if all(e in result for e in EXECUTORS) else "-"
                print(f"| {n:,} | {step} | {size / 1e6:,.1f} | {' | '.join(cells)} | {ratio} |", flush=True)
                source = work / f"{step}-{executors[0]}-0"
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")
    return rows


def report_fit(rows: list[dict], cpus: int) -> None:
    """Fit CPU seconds (wall time is the machine's load as much as the work's) and print the constants.

    In process, one CPU does the work, so its CPU seconds are its wall seconds on an idle machine.
    Ray's CPU seconds are spread over the CPUs: its fixed cost in wall seconds is its CPU intercept
    over this machine's CPUs, less the in-process intercept (imports, planning, writing the report).
    """
    print(f"\nfitted on CPU seconds (a + b * GB); {cpus} CPUs:")
    print("| step | local a s | local b s/GB | ray a CPU s | ray b CPU s/GB | extra Ray s | crossover GB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    constants = []
    for step in STEPS:
        mine = [r for r in rows if r["step"] == step]
        gb = [r["bytes"] / 1e9 for r in mine]
        la, lb = fit(gb, [r["local"][1] for r in mine])
        ra, rb = fit(gb, [r["ray"][1] for r in mine])
        extra = max(ra / cpus - la, 0.0)
        gain = lb - rb / cpus
        crossover = extra / gain if gain > 0 else float("inf")
        print(f"| {step} | {la:.2f} | {lb:.1f} | {ra:.2f} | {rb:.1f} | {extra:.1f} | {crossover:.3f} |")
        constants.append(
            f'    "{step}": Crossover(extra_ray_s={extra:.1f}, local_s_per_gb={lb:.0f}, ray_cpu_s_per_gb={rb:.0f}),'
        )
    print("\nfor pipelines/core/executor_choice.py:\n" + "\n".join(constants))


if __name__ == "__main__":
    main()
