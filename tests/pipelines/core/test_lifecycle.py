import json

import pyarrow as pa
import pytest

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.lifecycle import (
    PARTITION,
    MarkedWriter,
    Markers,
    finish_run,
    finished_report,
    is_finished,
    marker_name,
    prepare_output,
    reopen,
    run_pending,
)
from fusionforge.pipelines.core.progress import PLAN, UNIT
from fusionforge.pipelines.core.runner import InProcessExecutor, Source


class Numbers(Source):
    """``parts`` partitions of one row each (the row is the partition number)."""

    def __init__(self, parts):
        self.parts = parts

    def partitions(self):
        return list(range(self.parts))

    def read(self, partition):
        yield pa.table({"n": [partition]})


def test_a_fresh_folder_gets_the_fingerprint_and_a_non_empty_one_is_refused(tmp_path):
    out = tmp_path / "o"
    assert prepare_output(out, {"plan": [1, 2]}, resume=False) is False
    assert json.loads((out / "_work" / "plan.json").read_text()) == {"plan": [1, 2]}
    with pytest.raises(ConfigError, match="not empty; pass --resume"):
        prepare_output(out, {"plan": [1, 2]}, resume=False)
    with pytest.raises(ConfigError, match="differ from the run"):
        prepare_output(out, {"plan": [1, 3]}, resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file").write_text("x")
    with pytest.raises(ConfigError, match="no fusionforge run to resume"):
        prepare_output(tmp_path / "other", {}, resume=True)


def test_resume_removes_temporaries_but_keeps_finished_files(tmp_path):
    out = tmp_path / "o"
    prepare_output(out, {}, resume=False)
    (out / "shards").mkdir()
    (out / "shards" / ".a.tar.tmp-123").write_text("half")
    (out / "shards" / "a.tar").write_text("whole")
    (out / "shards" / ".b.tar.tmp-x").write_text("not ours")
    assert prepare_output(out, {}, resume=True) is False
    assert sorted(p.name for p in (out / "shards").iterdir()) == [".b.tar.tmp-x", "a.tar"]


def test_finish_writes_config_report_and_success_then_removes_scratch(tmp_path):
    out = tmp_path / "o"
    prepare_output(out, {"x": 1}, resume=False)
    (out / "_parts").mkdir()
    (out / "_parts" / "p.parquet").write_text("part")
    report = finish_run(out, {"kept": 3}, {"step": "test", "seed": 0}, scratch=("_parts",))
    assert report == {"kept": 3} == finished_report(out)
    assert (out / "config.yaml").read_text() == "step: test\nseed: 0\n"
    assert (out / "_SUCCESS").read_text() == "ok\n" and is_finished(out)
    assert not (out / "_parts").exists()
    order = sorted(("config.yaml", "report.json", "_SUCCESS"), key=lambda n: (out / n).stat().st_mtime_ns)
    assert order[-1] == "_SUCCESS"


def test_a_finished_run_is_found_on_resume_and_its_leftover_scratch_removed(tmp_path):
    out = tmp_path / "o"
    prepare_output(out, {"x": 1}, resume=False)
    finish_run(out, {"kept": 1}, {})
    (out / "_parts").mkdir()  # a kill between _SUCCESS and the clean-up
    assert prepare_output(out, {"x": 1}, resume=True, scratch=("_parts",)) is True
    assert not (out / "_parts").exists()
    reopen(out)
    assert not is_finished(out) and prepare_output(out, {"x": 1}, resume=True) is False


def test_markers_name_units_and_tell_which_are_pending(tmp_path):
    assert marker_name(PARTITION, 3) == "partition-000003" and marker_name("generated") == "generated"
    markers = Markers(str(tmp_path), PARTITION)
    markers.mark({"rows": 5}, 1)
    markers.mark({"rows": 7}, 12)
    Markers(str(tmp_path), "items").mark({}, 2)
    assert (tmp_path / "_markers" / "partition-000001.done.json").exists()
    assert markers.pending(range(4)) == [0, 2, 3]
    assert markers.read_all([1, 2]) == [{"rows": 5}, None]
    assert markers.done_numbers() == {1, 12}
    markers.clear(1)
    assert markers.read(1) is None and markers.done_numbers() == {12}
    once = Markers(str(tmp_path), "generated")
    assert once.read() is None
    once.mark({"images": 4})
    assert once.read() == {"images": 4} and (tmp_path / "_markers" / "generated.done.json").exists()


def test_run_pending_runs_only_unmarked_partitions_and_marks_each_after_its_writer(tmp_path):
    markers = Markers(str(tmp_path), PARTITION)
    markers.mark({"partition": 1, "n": [1]}, 1)
    written, events, made = [], [], []

    def write(partition, table):
        assert markers.read(partition) is None  # the marker comes after the partition's files
        written.append(partition)
        return {"partition": partition, "n": table.column("n").to_pylist()}

    def executor():
        made.append(1)
        return InProcessExecutor()

    skipped = run_pending(markers, Numbers(3), [], write, executor, lambda event, data: events.append((event, data)))
    assert (skipped, written, made) == (1, [0, 2], [1])
    assert events == [(PLAN, {"total": 3, "done": 1})] + [(UNIT, {"partition": p, "n": [p]}) for p in (0, 2)]
    assert markers.read_all(range(3)) == [{"partition": p, "n": [p]} for p in range(3)]
    assert run_pending(markers, Numbers(3), [], write, executor) == 3 and made == [1]  # no work: no executor


def test_a_writer_that_dies_leaves_no_marker(tmp_path):
    markers = Markers(str(tmp_path), PARTITION)

    def dies(partition, table):
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        MarkedWriter(markers, dies)(0, pa.table({"n": [0]}))
    assert markers.pending([0]) == [0]
