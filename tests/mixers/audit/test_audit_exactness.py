"""Exactness on real outputs (shard, dedupe, pack): whole == sum of parts, resume-safe, Ray == in-process,
--sample labelled."""

import dataclasses
import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fusionforge.mixers.audit import AuditOptions, Target, collect_state, run_audit
from fusionforge.mixers.audit.summary import build_report
from fusionforge.pipelines.core.progress import PHASE, UNIT
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.dedupe import DedupeConfig, run_dedupe
from fusionforge.pipelines.shard import ShardConfig, run_shard


def _shard(inputs: dict[str, str], out, **kw) -> str:
    cfg = ShardConfig(
        inputs=tuple(f"{k}={v}" for k, v in inputs.items()),
        output=str(out),
        shard_count=16,
        run=RunSettings(executor="local", **kw),
    )
    run_shard(cfg)
    return str(out)


@pytest.fixture(scope="module")
def whole(sample_corpus, tmp_path_factory):
    return _shard(sample_corpus, tmp_path_factory.mktemp("whole") / "out")


def _figures(report: dict) -> dict:
    """Everything but where the figures were read from."""
    return {k: v for k, v in report.items() if k not in ("inputs", "skipped")}


def test_audit_of_the_whole_equals_the_sum_of_audits_of_separate_runs(sample_corpus, whole, tmp_path):
    names = sorted(sample_corpus)
    first = _shard({k: sample_corpus[k] for k in names[::2]}, tmp_path / "a")
    second = _shard({k: sample_corpus[k] for k in names[1::2]}, tmp_path / "b")
    expected = _figures(run_audit([whole]))
    assert _figures(run_audit([first, second])) == expected
    found_a, state_a = collect_state([first])
    found_b, state_b = collect_state([second])
    found_a.outputs += found_b.outputs
    assert _figures(build_report(found_a, state_b.merge(state_a))) == expected
    assert expected["totals"]["records"] == pq.ParquetFile(f"{whole}/manifest.parquet").metadata.num_rows


def _split_output(whole: str, root: Path) -> list[str]:
    """Every Parquet file of the output ``whole`` cut at an arbitrary row into two parts (odd row-group sizes).

    A clusters file is cut between clusters instead: a cluster's size needs all of its rows, and a
    dedupe never writes one cluster into two files.
    """
    parts = [root / "p1", root / "p2"]
    for part in parts:
        part.mkdir(parents=True)
        for name in ("report.json", "config.yaml"):
            if (Path(whole) / name).exists():
                shutil.copy(Path(whole) / name, part / name)
    for name in ("manifest.parquet", "ledger.parquet", "rejected", "plan.parquet", "clusters.parquet"):
        if not (Path(whole) / name).exists():
            continue
        table = pq.read_table(f"{whole}/{name}")
        target = "rejected/part-000000.parquet" if name == "rejected" else name
        if name == "clusters.parquet":
            even = pc.equal(pc.bit_wise_and(table.column("cluster"), 1), 0)
            pieces = [table.filter(even), table.filter(pc.invert(even))]
        else:
            cut = table.num_rows * 2 // 5
            pieces = [table.slice(0, cut), table.slice(cut)]
        for part, piece, group_rows in zip(parts, pieces, (7, 11)):
            (part / target).parent.mkdir(exist_ok=True)
            pq.write_table(piece, part / target, row_group_size=group_rows)
    return [str(p) for p in parts]


def test_rows_split_anywhere_add_up_to_the_whole(whole, tmp_path):
    assert _figures(run_audit(_split_output(whole, tmp_path))) == _figures(run_audit([whole]))


def test_a_dedupe_output_split_anywhere_adds_up_to_the_whole(real_chain, tmp_path):
    dedupe = real_chain["dedupe"]
    expected = _figures(run_audit([dedupe]))
    assert expected["duplicates"]["clusters"] > 1 and expected["drop_reasons"]  # ledger reasons, clusters, records
    assert _figures(run_audit(_split_output(dedupe, tmp_path))) == expected


def test_a_pack_plan_split_anywhere_adds_up_to_the_whole(real_chain, tmp_path):
    pack, target = real_chain["pack"], Target(vision_ratio=0.1)
    expected = _figures(run_audit([pack], target=target))
    assert expected["packing"]["sequences"] > 11 and expected["packing"]["within_band_share"] is not None
    assert _figures(run_audit(_split_output(pack, tmp_path), target=target)) == expected


def test_an_output_named_twice_is_read_once(whole):
    once = run_audit([whole])
    assert _figures(run_audit([whole, f"{whole}/manifest.parquet", f"{whole}/rejected"])) == _figures(once)


class Killed(Exception):
    pass


def test_unfinished_and_resumed_runs_are_counted_once(sample_corpus, whole, tmp_path):
    out = tmp_path / "run"
    done = []

    def kill_after_three(event, summary):
        if event == UNIT:
            done.append(summary)
            if len(done) == 3:
                raise Killed

    cfg = ShardConfig(
        inputs=tuple(f"{k}={v}" for k, v in sample_corpus.items()),
        output=str(out),
        shard_count=16,
        run=RunSettings(executor="local"),
    )
    with pytest.raises(Killed):
        run_shard(cfg, kill_after_three)
    partial = run_audit([str(out)])
    assert partial["inputs"][0]["complete"] is False and partial["inputs"][0]["partitions_done"] == 3
    assert partial["totals"]["records"] == sum(s["kept"] for s in done)
    assert partial["funnel"]["all"][0]["remaining"] == sum(s["inputs"] for s in done)
    leftover = tmp_path / "leftover_parts"
    shutil.copytree(out / "_parts", leftover)

    run_shard(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, resume=True)))
    resumed = run_audit([str(out)])
    assert _figures(resumed) == _figures(run_audit([whole]))
    shutil.copytree(leftover, out / "_parts")  # killed between _SUCCESS and the clean-up: parts are left behind
    assert _figures(run_audit([str(out)])) == _figures(resumed)


def test_a_dedupe_killed_while_writing_and_resumed_is_counted_once(real_chain, tmp_path):
    cfg = DedupeConfig(
        input=real_chain["shard"], output=str(tmp_path / "dedup"), shard_count=4, run=RunSettings(executor="local")
    )
    phase, written = [], []

    def kill_after_two_written(event, data):
        if event == PHASE:
            phase.append(data["name"])
        elif event == UNIT and phase[-1] == "write":
            written.append(data)
            if len(written) == 2:
                raise Killed

    with pytest.raises(Killed):
        run_dedupe(cfg, kill_after_two_written)
    partial = run_audit([cfg.output])
    assert partial["inputs"][0]["complete"] is False and partial["inputs"][0]["partitions_done"] == 2
    assert partial["totals"]["records"] == sum(s["kept"] for s in written)
    assert partial["funnel"]["all"][0]["remaining"] == sum(s["inputs"] for s in written)
    run_dedupe(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, resume=True)))
    assert _figures(run_audit([cfg.output])) == _figures(run_audit([real_chain["dedupe"]]))


@pytest.mark.ray
def test_ray_tasks_give_the_same_report(ray_session, whole):
    local = run_audit([whole])
    on_ray = run_audit([whole], AuditOptions(run=RunSettings(executor="ray")))
    assert json.dumps(on_ray, sort_keys=True) == json.dumps(local, sort_keys=True)


def test_sample_reads_part_of_the_row_groups_and_says_so(whole, tmp_path):
    table = pq.read_table(f"{whole}/manifest.parquet")
    out = tmp_path / "many_groups"
    out.mkdir()
    pq.write_table(table, out / "manifest.parquet", row_group_size=10)
    (out / "report.json").write_text('{"step": "shard"}')
    exact = run_audit([str(out)])
    sampled = run_audit([str(out)], AuditOptions(sample=0.3, run=RunSettings(executor="local", seed=5)))
    assert exact["exact"] is True and sampled["exact"] is False
    assert sampled["sample"]["fraction"] == 0.3 and sampled["sample"]["rows_total"] == table.num_rows
    assert sampled["rows_read"] < table.num_rows / 2
    assert abs(sampled["totals"]["records"] - table.num_rows) <= 1  # row counts scale exactly per file
    assert sampled == run_audit([str(out)], AuditOptions(sample=0.3, run=RunSettings(executor="local", seed=5)))
