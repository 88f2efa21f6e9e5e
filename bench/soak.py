"""The million-record soak: one recipe (shard -> dedupe -> filter -> pack -> audit) over a generated corpus.

1. Writes the corpus of ``soak_corpus.py`` (text, image-text pairs, interleaved documents, videos,
   with planted duplicates and faults) and a recipe, and runs ``fusionforge run`` as a subprocess
   while a watcher samples its process tree: per step the wall time, the CPU time (the tree's, the
   children it reaped included) and the peak resident memory (the tree's sum; a step's peak is the
   highest sample taken while it ran, which includes what the earlier steps left in the process).
2. Checks the ledger invariant across the chain: shard's ledger has one row per generated record,
   each later step's ledger has exactly the ids its input kept, every row's status has its reason
   (or none for kept), and generated = dropped + failed over all steps + kept by pack.
3. Runs the recipe again into a fresh folder, kills it (SIGKILL to its process group) at a seeded
   random point (a random step, once a random number of that step's units are marked done: a
   point in time would miss when the load changes), runs it with ``--resume``, and compares every file
   of the two outputs: bytes, except report.json and config.yaml (compared without their timing and
   resume fields) and the resolved recipe (compared without ``--resume``).

    python bench/soak.py --records 1000000 --work /tmp/soak --json-out soak.json
    python bench/soak.py --records 20000             # a quick check
    python bench/soak.py --records 1000000 --work /tmp/soak --keep --reuse-first   # kill + resume only

``--reuse-first`` takes the uninterrupted run that an earlier ``--keep`` left in ``--work/out-1`` (the
corpus is reused in any case; the work folder is then kept, as if ``--keep`` were given) and runs
only the kill and the resume: at a million records each run
takes over an hour. That run may come from an earlier commit whose executor thresholds differed, so
the ``executor`` of report.json and config.yaml is then left out of the comparison and both choices are
printed; every data file is still compared byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak_corpus import make_soak_corpus  # noqa: E402

STEPS = ("shard", "dedupe", "filter", "pack", "audit")
WRITERS = ("shard", "dedupe", "filter", "pack")  # the steps with a ledger
FILTERS = {
    "filters": [
        "text_gopher_quality_v1",
        "text_gopher_repetition_v1",
        {"stage": "text_pii_v1", "action": "redact"},
        "interleaved_doc_v1",
        {"stage": "image_checks_v1", "min_side": 32, "max_aspect_ratio": 3.0},
        {"stage": "video_probe_v1", "min_duration_s": 0.5},
    ]
}
RULE = re.compile(r"─+ (\d+)/(\d+) (\w+) ─+")
# report.json / marker / plan fields that hold times, measured memory, or what a resume skipped
VOLATILE = re.compile(r"seconds|elapsed|rss|input_finished|resum|skipped", re.I)


@dataclass
class StepCost:
    """What one step of a run cost."""

    step: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_mb: float = 0.0
    records_in: int | None = None
    records_out: int | None = None
    executor: str | None = None


@dataclass
class Watched:
    """One ``fusionforge run`` process: its exit status, its steps' costs, and whether it was killed."""

    returncode: int
    seconds: float
    cpu_s: float
    peak_mb: float
    steps: list[StepCost] = field(default_factory=list)
    killed_in: str | None = None


def run_recipe(
    command: list[str],
    log: Path,
    kill: tuple[str, Path, int] | None = None,
    timeout: float = 4 * 3600,
    interval: float = 0.2,
) -> Watched:
    """Run ``command`` in its own process group, sample its tree, and split the samples by step.

    The step that runs is read from the rule ``fusionforge run`` prints before each step. With
    ``kill=(step, markers, k)``, the whole group gets SIGKILL once that step runs and its folder
    ``markers`` holds ``k`` completion markers (units of work: a kill lands between them and the
    next unit's writes, whatever the machine's load does to the timings).
    """
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # each step's rule arrives when it is printed
    )
    tree = psutil.Process(process.pid)
    events: list[tuple[float, str]] = []  # (time, step name) at each step's start
    samples: list[tuple[float, float, float]] = []  # (time, tree RSS bytes, tree CPU seconds)
    killed: list[str] = []
    done = threading.Event()

    def read() -> None:
        with open(log, "a", encoding="utf-8", buffering=1) as out:
            for raw in process.stdout:
                line = raw.decode(errors="replace")
                out.write(line)
                match = RULE.search(line)
                if match:
                    events.append((time.monotonic(), match.group(3)))

    def sample() -> None:
        while not done.is_set():
            rss, cpu = _tree(tree)
            now = time.monotonic()
            samples.append((now, rss, cpu))
            if kill and not killed and events and events[-1][1] == kill[0] and _count(kill[1]) >= kill[2]:
                killed.append(kill[0])
                os.killpg(process.pid, signal.SIGKILL)
            done.wait(interval)

    threads = [threading.Thread(target=read, daemon=True), threading.Thread(target=sample, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        raise RuntimeError(f"{' '.join(command)} ran past {timeout} s; killed") from None
    finally:
        ended = time.monotonic()
        done.set()
        for thread in threads:
            thread.join(timeout=30)
    cpu = max((s[2] for s in samples), default=0.0)
    peak = max((s[1] for s in samples), default=0.0) / 2**20
    steps = _split(events, samples, ended)
    return Watched(process.returncode, ended - started, cpu, peak, steps, killed[0] if killed else None)


def _count(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*.json")) if folder.is_dir() else 0


def _tree(process: psutil.Process) -> tuple[float, float]:
    """RSS and CPU seconds of ``process`` and its descendants (reaped children included in their parent's)."""
    rss = cpu = 0.0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0
    for member in members:
        try:
            with member.oneshot():
                rss += member.memory_info().rss
                times = member.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            pass
    return rss, cpu


def _split(events: list[tuple[float, str]], samples: list[tuple[float, float, float]], ended: float) -> list[StepCost]:
    costs = []
    for index, (start, name) in enumerate(events):
        end = events[index + 1][0] if index + 1 < len(events) else ended
        inside = [s for s in samples if start <= s[0] <= end]
        if not inside:
            costs.append(StepCost(name, wall_s=end - start))
            continue
        before = [s[2] for s in samples if s[0] <= start] or [inside[0][2]]
        cpu = max(s[2] for s in inside) - before[-1]
        costs.append(StepCost(name, end - start, cpu, max(s[1] for s in inside) / 2**20))
    return costs


def write_recipe(work: Path, sources: dict[str, str], out: Path, partition_mb: float, shard_count: int) -> Path:
    (work / "filters.yaml").write_text(yaml.safe_dump(FILTERS, sort_keys=False))
    recipe = {
        "output": str(out),
        "defaults": {"seed": 0},
        "steps": [
            {"shard": {"inputs": sources, "shard_count": shard_count, "partition_mb": partition_mb}},
            {"dedupe": {"keep": "first"}},
            {"filter": {"config": str(work / "filters.yaml")}},
            {"pack": {"seq_len": 4096, "vision_ratio": 0.1}},
            {"audit": {"html": str(out / "audit.html")}},
        ],
    }
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def fill_records(out: Path, steps: list[StepCost]) -> None:
    """Records in and kept per step, and the executor each chose, from the steps' report.json."""
    for cost in steps:
        report_path = out / cost.step / "report.json"
        if cost.step in WRITERS and report_path.exists():
            report = json.loads(report_path.read_text())
            cost.records_in, cost.records_out = report.get("inputs"), report.get("kept")
            cost.executor = (report.get("executor") or {}).get("chosen")


def check_ledgers(out: Path, generated: int) -> dict[str, object]:
    """The ledger invariant across the chain; raises AssertionError naming what broke."""
    fates: dict[str, dict[str, int]] = {}
    previous_kept = None
    ended = 0
    for step in WRITERS:
        ledger = pq.read_table(out / step / "ledger.parquet", columns=["id", "status", "reason", "parent_id"])
        status, reason = ledger.column("status"), ledger.column("reason")
        counts = {s: int(pc.sum(pc.equal(status, s)).as_py() or 0) for s in ("kept", "dropped", "failed")}
        assert sum(counts.values()) == ledger.num_rows, f"{step}: a status outside kept/dropped/failed"
        kept = pc.equal(status, "kept")
        assert reason.filter(kept).null_count == counts["kept"], f"{step}: a kept row with a reason"
        assert reason.filter(pc.invert(kept)).null_count == 0, f"{step}: a dropped or failed row without a reason"
        ids = ledger.column("id")
        assert pc.count_distinct(ids).as_py() == ledger.num_rows, f"{step}: an id with two fates"
        derived = ledger.column("parent_id").is_valid()
        inputs = ids.filter(pc.invert(derived))
        if previous_kept is None:
            assert len(inputs) == generated, f"shard: {len(inputs)} ledger rows for {generated} generated records"
        else:
            assert pc.all(pc.is_in(inputs, previous_kept)).as_py() and len(inputs) == len(previous_kept), (
                f"{step}: its ledger's inputs are not exactly what the step before kept"
            )
        previous_kept = ids.filter(kept)
        if step != "pack":
            manifest = pq.read_table(out / step / "manifest.parquet", columns=["id"]).column("id")
            assert len(manifest) == len(previous_kept), f"{step}: manifest and kept rows differ"
            assert pc.all(pc.is_in(manifest, previous_kept)).as_py(), f"{step}: a manifest id not kept"
        ended += counts["dropped"] + counts["failed"]
        fates[step] = {**counts, "derived": int(pc.sum(derived).as_py() or 0)}
    derived_total = sum(f["derived"] for f in fates.values())
    assert generated + derived_total == ended + fates["pack"]["kept"], "records lost or counted twice"
    return fates


def compare_outputs(first: Path, second: Path, ignore: tuple[str, ...] = ()) -> list[str]:
    """Paths (relative) whose content differs between two output folders, beyond timing and resume fields.

    ``ignore`` names more report.json and config.yaml keys to leave out (``--reuse-first``: the executor chosen).
    """
    names = {p.relative_to(first) for p in first.rglob("*") if p.is_file()}
    names |= {p.relative_to(second) for p in second.rglob("*") if p.is_file()}
    differ = []
    for name in sorted(names):
        a, b = first / name, second / name
        if not (a.is_file() and b.is_file()):
            differ.append(f"{name} (only in {'first' if a.is_file() else 'second'})")
        elif name.suffix == ".json":
            if _stable(json.loads(a.read_text()), ignore) != _stable(json.loads(b.read_text()), ignore):
                differ.append(str(name))
        elif name.name in ("config.yaml", "recipe.yaml"):
            if _stable(yaml.safe_load(_no_resume(a)), ignore) != _stable(yaml.safe_load(_no_resume(b)), ignore):
                differ.append(str(name))
        elif a.read_bytes() != b.read_bytes():
            differ.append(str(name))
    return differ


def _no_resume(path: Path) -> str:
    return path.read_text().replace(" --resume", "")


def _stable(value, ignore: tuple[str, ...] = ()):
    """``value`` without the keys that hold times, rates or what a resume skipped (nor those in ``ignore``)."""
    if isinstance(value, dict):
        return {k: _stable(v, ignore) for k, v in value.items() if not VOLATILE.search(str(k)) and k not in ignore}
    if isinstance(value, list):
        return [_stable(v, ignore) for v in value]
    return value


def _executors(first: Path, second: Path) -> dict[str, str]:
    """Each writing step's chosen executor in two output folders, as ``"first -> second"``."""

    def chosen(out: Path, step: str) -> str:
        return json.loads((out / step / "report.json").read_text())["executor"]["chosen"]

    return {step: f"{chosen(first, step)} -> {chosen(second, step)}" for step in WRITERS}


def table(steps: list[StepCost]) -> str:
    lines = [
        "| step | executor | wall s | CPU s | peak MB | records in | records out |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in steps:
        records = " | ".join(f"{v:,}" if v is not None else "" for v in (c.records_in, c.records_out))
        lines.append(
            f"| {c.step} | {c.executor or ''} | {c.wall_s:.1f} | {c.cpu_s:.1f} | {c.peak_mb:,.0f} | {records} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0, help="Of the corpus and of the kill point.")
    parser.add_argument("--work", type=Path, default=None, help="Scratch folder (default: a new temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="Seconds one run may take.")
    parser.add_argument(
        "--reuse-first", action="store_true", help="Reuse --work/out-1 (kept earlier); kill and resume only."
    )
    parser.add_argument(
        "--no-kill", action="store_true", help="Only the uninterrupted run and the ledger check (no kill, no resume)."
    )
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="ff-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return soak(args, work)
    finally:
        if not (args.keep or args.reuse_first):  # the reused run took an hour or more: never removed
            shutil.rmtree(work, ignore_errors=True)


def soak(args: argparse.Namespace, work: Path) -> int:
    load = os.getloadavg()
    started = time.monotonic()
    sources, planted = make_soak_corpus(work / "corpus", args.records, args.seed)
    corpus_mb = sum(p.stat().st_size for p in (work / "corpus").rglob("*") if p.is_file()) / 2**20
    print(
        f"corpus: {planted.records:,} records ({planted.counts}), {corpus_mb:,.0f} MB in "
        f"{time.monotonic() - started:.0f} s; planted {planted.faults}",
        flush=True,
    )
    out = work / "out"
    partition_mb = round(max(0.02, corpus_mb / 24), 3)  # about 24 partitions at any size: resume has units to keep
    recipe = write_recipe(work, sources, out, partition_mb, shard_count=max(100, args.records // 100))
    cli = [sys.executable, "-m", "fusionforge.cli", "run", str(recipe)]

    if args.reuse_first:
        if not (work / "out-1" / "pack" / "_SUCCESS").exists():
            raise SystemExit(f"--reuse-first: no finished uninterrupted run in {work / 'out-1'}")
        first = None
        fates = check_ledgers(work / "out-1", planted.records)
        print(f"reusing the uninterrupted run in {work / 'out-1'}; its ledger invariant holds: {fates}", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    else:
        first = run_recipe(cli, work / "run-1.log", timeout=args.timeout)
        if first.returncode != 0:
            raise SystemExit(f"the first run failed ({first.returncode}); see {work / 'run-1.log'}")
        fill_records(out, first.steps)
        print(f"uninterrupted run: {first.seconds:.1f} s (load average at start {load[0]:.1f})", flush=True)
        print(table(first.steps), flush=True)
        fates = check_ledgers(out, planted.records)
        print(f"ledger invariant holds: {fates}", flush=True)
        out.rename(work / "out-1")
    if args.no_kill:
        _write_summary(args.json_out, planted, corpus_mb, load, first, fates)
        return 0

    rng = random.Random(args.seed)
    step = rng.choice(WRITERS)
    units = _count(work / "out-1" / step / "_markers")
    kill = (step, out / step / "_markers", rng.randrange(max(1, units)))
    for log in ("run-2.log", "run-3.log"):
        (work / log).unlink(missing_ok=True)
    killed = run_recipe(cli, work / "run-2.log", kill=kill, timeout=args.timeout)
    if killed.killed_in is None:
        raise SystemExit(f"the second run ended ({killed.returncode}) before the kill point {kill}")
    point = f"in {step} after {kill[2]} of its {units} units"
    print(f"second run killed (seed {args.seed}) {point}, {killed.seconds:.1f} s into the run", flush=True)
    fill_records(out, killed.steps)
    print(table(killed.steps), flush=True)
    resumed = run_recipe([*cli, "--resume"], work / "run-3.log", timeout=args.timeout)
    if resumed.returncode != 0:
        raise SystemExit(f"the resumed run failed ({resumed.returncode}); see {work / 'run-3.log'}")
    fill_records(out, resumed.steps)
    print(f"resumed run: {resumed.seconds:.1f} s", flush=True)
    print(table(resumed.steps), flush=True)
    check_ledgers(out, planted.records)
    ignore = ("executor",) if args.reuse_first else ()
    if ignore:
        print(f"executors, uninterrupted -> resumed: {_executors(work / 'out-1', out)}", flush=True)
    differ = compare_outputs(work / "out-1", out, ignore)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"outputs after kill + resume vs uninterrupted: {files} files, {len(differ)} differ {differ}", flush=True)
    kill_report = {
        "step": step,
        "after_units": kill[2],
        "units": units,
        "run_s": killed.seconds,
        "steps": [asdict(c) for c in killed.steps],
    }
    _write_summary(args.json_out, planted, corpus_mb, load, first, fates, kill_report, resumed, files, differ)
    return 1 if differ else 0


def _write_summary(
    path: Path | None, planted, corpus_mb, load, first, fates, kill=None, resumed=None, files=0, differ=()
):
    """The soak's figures as JSON (for bench/README.md and the test)."""
    if path is None:
        return
    summary = {
        "records": planted.records,
        "counts": planted.counts,
        "faults": planted.faults,
        "corpus_mb": corpus_mb,
        "load_average_at_start": load,
        "first": asdict(first) if first else None,
        "ledger": fates,
        "kill": kill,
        "resumed": asdict(resumed) if resumed else None,
        "files_compared": files,
        "differ": list(differ),
    }
    path.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
