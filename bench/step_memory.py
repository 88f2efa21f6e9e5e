"""Peak memory of in-process ``dedupe`` and ``pack`` as the corpus grows (issue 16, item 3: flat from 200k to 1M).

For each size, the soak's corpus (``soak_corpus.py``: text, pairs, interleaved documents, videos) is
sharded in process, then ``dedupe`` and ``pack`` each run as their own in-process command while a
watcher samples the resident memory of the command and its children (ffprobe) and their CPU time.
The last line prints each step's peak at the largest size over its peak at the smallest: the goal is
at most 1.2. What a user would otherwise see is the same command on the smaller corpus, so the ratio
is the comparison.

    python bench/step_memory.py --records 200000 1000000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak import run_recipe  # noqa: E402
from soak_corpus import make_soak_corpus  # noqa: E402


def measure(
    records: int,
    work: Path,
    seed: int,
    partition_mb: float,
    steps: list[str],
    shard: Path | None = None,
    baseline: str | None = None,
) -> dict[str, tuple[float, float, float]]:
    """``{step: (seconds, CPU seconds, peak MB)}`` of shard, dedupe and pack over ``records`` records.

    ``shard``: an existing shard output of the same corpus (e.g. the soak's) instead of sharding again;
    ``baseline``: another Python (another install of fusionforge) that runs pack too, as "pack (baseline)".
    Without dedupe in ``steps`` pack reads shard's output.
    """
    cli = [sys.executable, "-m", "fusionforge.cli"]
    local = ["--executor", "local", "--seed", "0"]
    commands: dict[str, list[str]] = {}
    if shard is None:
        sources, _ = make_soak_corpus(work / "corpus", records, seed)
        inputs = [f"{name}={path}" for name, path in sources.items()]
        commands["shard"] = [*cli, "shard", *inputs, "--shard-count", "10000", "--partition-mb", str(partition_mb)]
        shard = work / "shard"
    if "dedupe" in steps:
        commands["dedupe"] = [*cli, "dedupe", str(shard)]
    pack = ["pack", str(work / "dedupe" if "dedupe" in steps else shard), "--seq-len", "4096", "--vision-ratio", "0.1"]
    if "pack" in steps:
        commands["pack"] = [*cli, *pack]
    if baseline and "pack" in steps:
        commands["pack (baseline)"] = [baseline, "-m", "fusionforge.cli", *pack]
    costs = {}
    for step, command in commands.items():
        out = work / step.replace(" ", "-").strip("()")
        watched = run_recipe([*command, "-o", str(out), *local], work / f"{out.name}.log")
        if watched.returncode != 0:
            raise SystemExit(f"{step} failed ({watched.returncode}); see {work / f'{out.name}.log'}")
        costs[step] = (watched.seconds, watched.cpu_s, watched.peak_mb)
        print(
            f"| {records:,} | {step} | {watched.seconds:.1f} | {watched.cpu_s:.1f} | {watched.peak_mb:,.0f} |",
            flush=True,
        )
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--partition-mb", type=float, default=32.0, help="shard's --partition-mb (memory per unit).")
    parser.add_argument("--shard", type=Path, default=None, help="Shard output to reuse at the largest size.")
    parser.add_argument("--baseline", default=None, help="Python of another install to run pack with too.")
    parser.add_argument("--steps", nargs="+", choices=["dedupe", "pack"], default=["dedupe", "pack"])
    args = parser.parse_args()
    print("| records | step | seconds | CPU s | peak MB |\n| ---: | --- | ---: | ---: | ---: |", flush=True)
    results = {}
    for records in args.records:
        work = Path(tempfile.mkdtemp(prefix="ff-bench-step-mem-"))
        reuse = args.shard if records == max(args.records) else None
        try:
            results[records] = measure(records, work, args.seed, args.partition_mb, args.steps, reuse, args.baseline)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    small, large = min(results), max(results)
    steps = [s for s in results[large] if s != "shard"]
    ratios = ", ".join(f"{s} {results[large][s][2] / results[small][s][2]:.2f}x" for s in steps)
    print(f"peak at {large:,} over peak at {small:,}: {ratios} (goal: at most 1.2x)")


if __name__ == "__main__":
    main()
