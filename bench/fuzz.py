"""The reader fuzz properties (``tests/fuzz/test_fuzz_readers.py``) with many random cases instead of the
suite's small fixed budget, then how many cases ran per property and what they found.

Every reader gets mutated bytes and structures (JSONL plain/gz/bz2/zstd, Parquet, pairs listings,
interleaved documents, WebDataset tars, folders of anything, chat rows for ``sft build``, prompt
files for ``rft run``); a property fails when an exception escapes, a record gets no row or two, or
a good record is not kept. Hypothesis shrinks a failure to its smallest case and prints it: turn it
into an ``@example`` (or a named regression test) next to the property, then fix the reader.

    python bench/fuzz.py --examples 2000 --seed 1
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ_TESTS = ROOT / "tests" / "fuzz" / "test_fuzz_readers.py"
_TEST = re.compile(r"^(\S+::test_\w+):\s*$")
_COUNTS = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")


def run(examples: int, seed: int, select: str | None) -> tuple[int, str]:
    """Run the properties under pytest; return its exit status and its output."""
    env = {**os.environ, "FUSIONFORGE_FUZZ_EXAMPLES": str(examples), "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "pytest", str(FUZZ_TESTS), "-q", "-p", "no:cacheprovider"]
    args += ["--hypothesis-show-statistics", f"--hypothesis-seed={seed}"]
    if select:
        args += ["-k", select]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=24 * 3600, check=False)
    return done.returncode, done.stdout + done.stderr


def cases_by_property(output: str) -> dict[str, list[int]]:
    """[passing, failing, invalid] examples per property, summed over Hypothesis' phases."""
    counts: dict[str, list[int]] = {}
    current = None
    for line in output.splitlines():
        if match := _TEST.match(line.strip()):
            current = match.group(1).split("::")[-1]
            counts.setdefault(current, [0, 0, 0])
        elif current and (match := _COUNTS.search(line)):
            for i, value in enumerate(match.groups()):
                counts[current][i] += int(value)
    return counts


def failures(output: str, limit: int = 20_000) -> str:
    """Pytest's report of the failing properties: the shrunk case Hypothesis found and the assertion."""
    start = output.find("= FAILURES =")
    if start < 0:
        return output[-limit:]
    ends = [
        i for i in (output.find("= Hypothesis Statistics =", start), output.find("short test summary", start)) if i > 0
    ]
    return output[start : min(ends, default=len(output))][:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="random cases per property")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (another seed, other cases)")
    parser.add_argument("-k", dest="select", default=None, help="only the properties whose names match")
    args = parser.parse_args()
    started = time.monotonic()
    status, output = run(args.examples, args.seed, args.select)
    counts = cases_by_property(output)
    width = max((len(name) for name in counts), default=10)
    print(f"{'property':<{width}}  {'passing':>8}  {'failing':>8}  {'invalid':>8}")
    for name, (passing, failing, invalid) in counts.items():
        print(f"{name:<{width}}  {passing:>8,}  {failing:>8,}  {invalid:>8,}")
    total = sum(passing + failing for passing, failing, _ in counts.values())
    print(f"\n{total:,} cases over {len(counts)} properties in {time.monotonic() - started:.0f} s (seed {args.seed})")
    if status == 0:
        print("found: nothing (every property held for every case)")
        return
    failing = [name for name, (_, failed, _) in counts.items() if failed]
    print(f"found: failures in {', '.join(failing) or 'the run'}\n")
    print(failures(output))
    sys.exit(1)


if __name__ == "__main__":
    main()
