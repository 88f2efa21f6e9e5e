"""Peak memory of ``fusionforge dedupe`` as the corpus grows (the issue's 200k-document figure).

For each size, the corpus of ``bench/dedupe.py`` is sharded, then ``fusionforge dedupe --only text``
runs as its own process (Ray on 2 CPUs, then in-process) while a watcher samples the resident
memory of that process (the driver) and of all its descendants (Ray's GCS, raylet and workers;
shared object-store pages are counted in every process that maps them, so the sum overstates).

    python bench/dedupe_memory.py --docs 100000 200000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedupe import make_corpus  # noqa: E402


def watch(command: list[str]) -> tuple[float, float, float]:
    """Run ``command``; return (seconds, driver peak MB, peak MB of the driver plus its descendants)."""
    import psutil

    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                driver = process.memory_info().rss
                total = driver + sum(_rss(child) for child in process.children(recursive=True))
                peaks[0], peaks[1] = max(peaks[0], driver), max(peaks[1], total)
            except psutil.Error:
                pass
            done.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, stderr = process.communicate(timeout=3600)
    done.set()
    thread.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.decode(errors='replace')[-2000:]}")
    return time.perf_counter() - started, peaks[0] / 2**20, peaks[1] / 2**20


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
    print("| documents | executor | seconds (incl. Ray start) | driver peak MB | driver + Ray processes peak MB |")
    print("| ---: | --- | ---: | ---: | ---: |")
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
                seconds, driver, total = watch(
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
                print(f"| {n:,} | {executor} | {seconds:.1f} | {driver:,.0f} | {total:,.0f} |", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
