"""Exactness on real shard outputs: whole == sum of parts, resume-safe, Ray == in-process, --sample labelled."""

import json
import shutil

import pyarrow.parquet as pq
import pytest
from fusionforge.mixers.audit import AuditOptions, collect_state, run_audit
from fusionforge.mixers.audit.summary import build_report
from fusionforge.pipelines.shard import ShardConfig, run_shard


def _shard(inputs: dict[str, str], out, **kw) -> str:
    cfg = ShardConfig(inputs=tuple(f"{k}={v}" for k, v in inputs.items()), output=str(out), shard_count=16,
                      executor="local", **kw)
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


def test_rows_split_anywhere_add_up_to_the_whole(whole, tmp_path):
    parts = [tmp_path / "p1", tmp_path / "p2"]
    for part in parts:
        (part / "rejected").mkdir(parents=True)
        shutil.copy(f"{whole}/report.json", part / "report.json")
    for name in ("manifest.parquet", "ledger.parquet", "rejected"):
        table = pq.read_table(f"{whole}/{name}")
        cut = table.num_rows * 2 // 5
        target = "rejected/part-000000.parquet" if name == "rejected" else name
        pq.write_table(table.slice(0, cut), parts[0] / target, row_group_size=7)
        pq.write_table(table.slice(cut), parts[1] / target, row_group_size=11)
    assert _figures(run_audit([str(p) for p in parts])) == _figures(run_audit([whole]))


def test_an_output_named_twice_is_read_once(whole):
    once = run_audit([whole])
    assert _figures(run_audit([whole, f"{whole}/manifest.parquet", f"{whole}/rejected"])) == _figures(once)


class Killed(Exception):
    pass


def test_unfinished_and_resumed_runs_are_counted_once(sample_corpus, whole, tmp_path):
    out = tmp_path / "run"
    done = []

    def kill_after_three(summary):
        done.append(summary)
        if len(done) == 3:
            raise Killed

    cfg = ShardConfig(inputs=tuple(f"{k}={v}" for k, v in sample_corpus.items()), output=str(out), shard_count=16,
                      executor="local")
    with pytest.raises(Killed):
        run_shard(cfg, on_partition=kill_after_three)
    partial = run_audit([str(out)])
    assert partial["inputs"][0]["complete"] is False and partial["inputs"][0]["partitions_done"] == 3
    assert partial["totals"]["records"] == sum(s["kept"] for s in done)
    assert partial["funnel"]["all"][0]["remaining"] == sum(s["inputs"] for s in done)
    leftover = tmp_path / "leftover_parts"
    shutil.copytree(out / "_parts", leftover)

    run_shard(ShardConfig(**{**cfg.__dict__, "resume": True}))
    resumed = run_audit([str(out)])
    assert _figures(resumed) == _figures(run_audit([whole]))
    shutil.copytree(leftover, out / "_parts")  # killed between _SUCCESS and the clean-up: parts are left behind
    assert _figures(run_audit([str(out)])) == _figures(resumed)


@pytest.mark.ray
def test_ray_tasks_give_the_same_report(ray_session, whole):
    local = run_audit([whole])
    on_ray = run_audit([whole], AuditOptions(executor="ray"))
    assert json.dumps(on_ray, sort_keys=True) == json.dumps(local, sort_keys=True)


def test_sample_reads_part_of_the_row_groups_and_says_so(whole, tmp_path):
    table = pq.read_table(f"{whole}/manifest.parquet")
    out = tmp_path / "many_groups"
    out.mkdir()
    pq.write_table(table, out / "manifest.parquet", row_group_size=10)
    (out / "report.json").write_text('{"step": "shard"}')
    exact = run_audit([str(out)])
    sampled = run_audit([str(out)], AuditOptions(sample=0.3, seed=5))
    assert exact["exact"] is True and sampled["exact"] is False
    assert sampled["sample"]["fraction"] == 0.3 and sampled["sample"]["rows_total"] == table.num_rows
    assert sampled["rows_read"] < table.num_rows / 2
    assert abs(sampled["totals"]["records"] - table.num_rows) <= 1  # row counts scale exactly per file
    assert sampled == run_audit([str(out)], AuditOptions(sample=0.3, seed=5))
