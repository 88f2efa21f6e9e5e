"""Peak memory, CPU time and phase shares of ``fusionforge dedupe`` as the corpus grows (the issue's 200k figure).

For each size, the corpus of ``bench/dedupe.py`` is sharded, then ``fusionforge dedupe --only text``
runs as its own process (Ray on 2 CPUs, then in-process) while a watcher samples the resident
memory of that process (the driver) and of all its descendants (Ray's GCS, raylet and workers;
shared object-store pages are counted in every process that maps them, so the sum overstates) and
their CPU time; the report's phase timings give each phase's share of the wall time.

    python bench/dedupe_memory.py --docs 100000 200000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedupe import make_corpus  # noqa: E402

PHASES = ("sketch", "group_verify", "resolve", "write")  # the phases dedupe's report times


@dataclass(frozen=True)
class Watched:
    """What one command cost: wall seconds, peak memory, CPU seconds (Ray's processes included), its stdout."""

    seconds: float
    driver_mb: float
    total_mb: float
    cpu_s: float
    stdout: str


def watch(command: list[str]) -> Watched:
    """Run ``command`` while sampling its process tree every 0.2 s.

    Memory: the peak of the command (the driver) and of it plus every descendant (Ray's GCS, raylet,
    workers). CPU: the command and the children it waited for (``os.times``), plus the last sample
    of every other descendant (Ray's daemons are not waited for; at most 0.2 s of each one's end is
    missed).
    """
    import psutil

    started = time.perf_counter()
    before = os.times()
    process = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peaks = [0, 0]
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                driver = process.memory_info().rss
                children = process.children(recursive=True)
                total = driver + sum(_rss(child) for child in children)
                peaks[0], peaks[1] = max(peaks[0], driver), max(peaks[1], total)
                for child in children:
                    times = child.cpu_times()
                    cpu[child.pid] = times.user + times.system
            except psutil.Error:
                pass
            done.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    stdout, stderr = process.communicate(timeout=3600)
    done.set()
    thread.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.decode(errors='replace')[-2000:]}")
    after = os.times()
    waited = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Watched(seconds, peaks[0] / 2**20, peaks[1] / 2**20, waited + sum(cpu.values()), stdout.decode())


def _rss(process) -> int:
    import psutil

    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000, 200_000])
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cli = [sys.executable, "-m", "fusionforge.cli"]
    print(
        "| documents | executor | seconds (incl. Ray start) | CPU s (all processes) | driver peak MB "
        "| driver + Ray processes peak MB | sketch / group+verify / resolve / write, share of the seconds |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for n in args.docs:
        work = Path(tempfile.mkdtemp(prefix="ff-bench-dedupe-mem-"))
        try:
            make_corpus(work / "corpus", n)
            subprocess.run(
                [
                    *cli,
                    "shard",
                    f"bench={work / 'corpus'}",
                    "-o",
                    str(work / "in"),
                    "--shard-count",
                    "5000",
                    "--partition-mb",
                    "16",
                    "--executor",
                    "local",
                ],
                check=True,
                capture_output=True,
                timeout=3600,
            )
            for executor in ("ray", "local"):
                out = work / f"out-{executor}"
                run = watch(
                    [
                        *cli,
                        "dedupe",
                        str(work / "in"),
                        "-o",
                        str(out),
                        "--only",
                        "text",
                        "--executor",
                        executor,
                        "--num-cpus",
                        "2",
                        "--shard-count",
                        "5000",
                        "--json",
                    ]
                )
                phases = json.loads(run.stdout)["dedupe"]["seconds"]
                shares = " / ".join(f"{100 * phases[p] / run.seconds:.0f}%" for p in PHASES)
                memory = f"{run.driver_mb:,.0f} | {run.total_mb:,.0f}"
                print(f"| {n:,} | {executor} | {run.seconds:.1f} | {run.cpu_s:.1f} | {memory} | {shares} |", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
