"""Peak memory, CPU time and phase shares of ``fusionforge dedupe`` (or ``pack``) as the corpus grows.

For each size, the corpus of ``bench/dedupe.py`` is sharded, then ``fusionforge dedupe --only text``
(and/or ``fusionforge pack --seq-len 2048``, ``--steps``) runs as its own process on each
executor (Ray on 2 CPUs, in-process) while a watcher samples, every 0.2 s, the resident memory of
that process (the driver) and of all its descendants (Ray's GCS, raylet and workers; shared
object-store pages are counted in every process that maps them, so the sum overstates), the size
of Ray's object store (the pages of the raylet's plasma file in /dev/shm, counted once) and their
CPU time; dedupe's report gives each phase's share of the wall time.

    python bench/dedupe_memory.py --docs 100000 200000
    python bench/dedupe_memory.py --docs 200000 1000000 --steps dedupe pack --executors ray
    python bench/dedupe_memory.py --docs 200000 1000000 --work /tmp/dmem  # keeps the sharded corpora, reuses them
    python bench/dedupe_memory.py --corpus mixed --docs 200000 1000000 --work /tmp/dmem-mixed

``--corpus mixed`` takes the soak's corpus instead (``bench/soak_corpus.py``: documents, image-text
pairs, interleaved documents, videos) and deduplicates every modality (images bring 441 band rows
each, against 18 per document) with the soak's settings. Either corpus is sharded into shards of a
fixed size at every corpus size (a shard is one unit of dedupe's and pack's work, and a unit's
memory grows with its rows; the soak instead cuts about 24 partitions at any size).
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
from soak_corpus import make_soak_corpus  # noqa: E402

PHASES = ("sketch", "group_verify", "resolve", "write")  # the phases dedupe's report times


# a step's limit: a 1M-record Ray dedupe of the mixed corpus took 3,615 s at load 4-5 (2026-12-06)
STEP_TIMEOUT_S = 3 * 3600


@dataclass(frozen=True)
class Watched:
    """What one command cost: wall seconds, peak memory, CPU seconds (Ray's processes included), its stdout."""

    seconds: float
    driver_mb: float
    total_mb: float
    cpu_s: float
    stdout: str
    object_store_mb: float = 0.0


def watch(command: list[str], timeout_s: float = STEP_TIMEOUT_S) -> Watched:
    """Run ``command`` while sampling its process tree every 0.2 s.

    Memory: the peak of the command (the driver) and of it plus every descendant (Ray's GCS, raylet,
    workers). CPU: the command and the children it waited for (``os.times``), plus the last sample
    of every other descendant (Ray's daemons are not waited for; at most 0.2 s of each one's end is
    missed). Object store: the peak of the bytes the raylet's plasma file holds (``plasma_bytes``).
    """
    import psutil

    started = time.perf_counter()
    before = os.times()
    process = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peaks = [0, 0, 0]
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
                    if child.name() == "raylet":
                        peaks[2] = max(peaks[2], plasma_bytes(child.pid))
            except psutil.Error:
                pass
            done.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    stdout, stderr = process.communicate(timeout=timeout_s)
    done.set()
    thread.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.decode(errors='replace')[-2000:]}")
    after = os.times()
    waited = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    mb = [peak / 2**20 for peak in peaks]
    return Watched(seconds, mb[0], mb[1], waited + sum(cpu.values()), stdout.decode(), mb[2])


def plasma_bytes(raylet_pid: int) -> int:
    """Bytes in use in Ray's object store: the blocks of the (deleted) /dev/shm plasma file the raylet maps.

    The file is sized to the store's capacity but tmpfs allocates its pages only when written, so its
    block count is what stored objects have occupied, counted once however many processes map it
    (pages stay allocated when objects are freed: it reads the store's high-water mark; checked:
    ``ray.put`` of 100 MB adds 100 MB).
    """
    try:
        with open(f"/proc/{raylet_pid}/maps", encoding="utf-8") as maps:
            ranges = [line.split()[0] for line in maps if "/plasma" in line]
        sizes = {}
        for address in ranges:
            info = os.stat(f"/proc/{raylet_pid}/map_files/{address}")
            sizes[info.st_ino] = info.st_blocks * 512
        return sum(sizes.values())
    except OSError:  # the raylet ended between the listing and the reading
        return 0


def _rss(process) -> int:
    import psutil

    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000, 200_000])
    parser.add_argument("--steps", nargs="+", choices=("dedupe", "pack"), default=["dedupe"])
    parser.add_argument("--executors", nargs="+", choices=("ray", "local"), default=["ray", "local"])
    parser.add_argument("--corpus", choices=("text", "mixed"), default="text", help="bench/dedupe.py's or the soak's.")
    parser.add_argument(
        "--work", type=Path, default=None, help="Keep, reuse each corpus under WORK/<docs> (mixed: WORK/mixed-<docs>)."
    )
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cli = [sys.executable, "-m", "fusionforge.cli"]
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    print(
        "| documents | step | executor | seconds (incl. Ray start) | CPU s (all processes) | driver peak MB "
        "| driver + Ray processes peak MB | object store peak MB "
        "| sketch / group+verify / resolve / write, share of the seconds |"
    )
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for n in args.docs:
        name = str(n) if args.corpus == "text" else f"{args.corpus}-{n}"  # a kept corpus is reused by its kind
        work = args.work / name if args.work else Path(tempfile.mkdtemp(prefix="ff-bench-dedupe-mem-"))
        try:
            if not (work / "in" / "_SUCCESS").exists():
                prepare_input(cli, work, n, args.corpus)
            for step in args.steps:
                for executor in args.executors:
                    out = work / f"{step}-{executor}"
                    shutil.rmtree(out, ignore_errors=True)  # left by an interrupted run under --work
                    command = [*cli, *step_args(step, work / "in", out, args.corpus), "--executor", executor, "--json"]
                    run = watch(command)
                    shares = "-"
                    if step == "dedupe":
                        phases = json.loads(run.stdout)["dedupe"]["seconds"]
                        shares = " / ".join(f"{100 * phases[p] / run.seconds:.0f}%" for p in PHASES)
                    memory = f"{run.driver_mb:,.0f} | {run.total_mb:,.0f} | {run.object_store_mb:,.0f}"
                    cells = f"{run.seconds:.1f} | {run.cpu_s:.1f} | {memory} | {shares}"
                    print(f"| {n:,} | {step} | {executor} | {cells} |", flush=True)
                    shutil.rmtree(out, ignore_errors=True)
        finally:
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def prepare_input(cli: list[str], work: Path, n: int, corpus: str = "text") -> None:
    """``n`` records of the chosen corpus, sharded in-process into ``work/in`` (what an interrupted
    preparation left is removed first), in shards of a fixed number of records."""
    shutil.rmtree(work / "in", ignore_errors=True)
    if corpus == "mixed":
        sources, _ = make_soak_corpus(work / "corpus", n)
        inputs = [f"{name}={path}" for name, path in sources.items()]
        sizing = ["--shard-count", "2000", "--partition-mb", "16"]
    else:
        make_corpus(work / "corpus", n)
        inputs, sizing = [f"bench={work / 'corpus'}"], ["--shard-count", "5000", "--partition-mb", "16"]
    subprocess.run(
        [*cli, "shard", *inputs, "-o", str(work / "in"), *sizing, "--seed", "0", "--executor", "local"],
        check=True,
        capture_output=True,
        timeout=3600,
    )


def step_args(step: str, source: Path, out: Path, corpus: str = "text") -> list[str]:
    """The step's command line (less the executor). Text: dedupe of the text alone, packing into 2,048-token
    sequences. Mixed: the soak's dedupe (every modality) and pack (4,096 tokens at a vision ratio of 0.1)."""
    if corpus == "mixed":
        if step == "pack":
            packing = ["--seq-len", "4096", "--vision-ratio", "0.1", "--num-cpus", "2"]
            return ["pack", str(source), "-o", str(out), *packing]
        return ["dedupe", str(source), "-o", str(out), "--keep", "first", "--seed", "0", "--num-cpus", "2"]
    if step == "pack":
        return ["pack", str(source), "-o", str(out), "--seq-len", "2048", "--num-cpus", "2"]
    return ["dedupe", str(source), "-o", str(out), "--only", "text", "--num-cpus", "2", "--shard-count", "5000"]


if __name__ == "__main__":
    main()
