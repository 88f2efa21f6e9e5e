import os
import uuid

import pyarrow as pa
import pytest

from fusionforge.pipelines.core.progress import UNIT
from fusionforge.pipelines.core.runner import InProcessExecutor, RayExecutor
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.core.stage import Resources, Stage, StageSpec


class NumberSource(Source):
    """Three partitions of numbers, read in small batches."""

    def partitions(self):
        return [0, 1, 2]

    def read(self, partition):
        values = list(range(partition * 100, partition * 100 + 37 + partition))
        for start in range(0, len(values), 10):
            yield pa.table({"x": values[start : start + 10]})


class Square(Stage):
    name = "test_square_v1"

    def __call__(self, batch):
        return batch.append_column("y", pa.array([v * v for v in batch.column("x").to_pylist()]))


class AddOffset(Stage):
    """Stateful: built once per actor; each batch is stamped with the instance and the process that ran it."""

    name = "test_add_offset_v1"
    stateful = True
    resources = Resources(batch_size=7, concurrency=2)

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.pid = os.getpid()
        self.instance = uuid.uuid4().hex
        self.batches = 0

    def __call__(self, batch):
        self.batches += 1
        n = batch.num_rows
        batch = batch.append_column("z", pa.array([v + self.offset for v in batch.column("y").to_pylist()]))
        stamps = {
            "pid": [self.pid] * n,
            "now_pid": [os.getpid()] * n,
            "instance": [self.instance] * n,
            "batch_no": [self.batches] * n,
        }
        for name, values in stamps.items():
            batch = batch.append_column(name, pa.array(values))
        return batch


STAMPS = ["pid", "now_pid", "instance", "batch_no"]


def collect(store):
    def writer(partition, table):
        store[partition] = table.to_pylist()
        return {"partition": partition, "rows": table.num_rows}

    return writer


STAGES = [StageSpec(Square), StageSpec(AddOffset, {"offset": 5})]


def test_in_process_executor_applies_stages_in_order():
    store = {}
    summaries = InProcessExecutor().run(NumberSource(), STAGES, collect(store))
    assert [s["rows"] for s in summaries] == [37, 38, 39]
    assert {k: store[1][0][k] for k in ("x", "y", "z")} == {"x": 100, "y": 10000, "z": 10005}
    assert {r["pid"] for rows in store.values() for r in rows} == {os.getpid()}  # built once, in this process
    assert len({r["instance"] for rows in store.values() for r in rows}) == 1
    assert [r["x"] for r in store[2]] == list(range(200, 239))


@pytest.mark.ray
def test_ray_executor_gives_the_same_rows_with_actor_stages(ray_session, tmp_path):
    import json

    expected = {}
    InProcessExecutor().run(NumberSource(), STAGES, collect(expected))

    def file_writer(partition, table):  # Ray runs the writer in workers: write to disk, not to a dict
        (tmp_path / f"{partition}.json").write_text(json.dumps(table.to_pylist()))
        return {"partition": partition, "rows": table.num_rows}

    progress = []
    summaries = RayExecutor().run(
        NumberSource(),
        STAGES,
        file_writer,
        partitions=[0, 2],
        progress=lambda event, data: progress.append((event, data)),
    )
    assert [s["partition"] for s in summaries] == [0, 2]
    assert sorted((event, data["partition"]) for event, data in progress) == [(UNIT, 0), (UNIT, 2)]
    rows = []
    for partition in (0, 2):
        written = json.loads((tmp_path / f"{partition}.json").read_text())
        assert [{k: v for k, v in r.items() if k not in STAMPS} for r in written] == [
            {k: v for k, v in r.items() if k not in STAMPS} for r in expected[partition]
        ]
        rows += written
    assert not (tmp_path / "1.json").exists()
    # the stateful stage ran as Ray actors: in other processes than this driver, each instance built once
    # in its process and then fed batch after batch (its counter goes on), no more instances than the pool
    instances = {}
    for row in rows:
        instances.setdefault(row["instance"], set()).add((row["pid"], row["now_pid"], row["batch_no"]))
    assert 1 <= len(instances) <= AddOffset.resources.concurrency
    assert all(pid != os.getpid() for row in rows for pid in (row["pid"], row["now_pid"]))
    for stamps in instances.values():
        ((built_in, ran_in),) = {(pid, now) for pid, now, _ in stamps}  # one process for all its batches...
        assert built_in == ran_in  # ...the one that built it
    batches = sorted(n for stamps in instances.values() for _, _, n in stamps)
    assert len(batches) >= 76 // 7 and max(batches) > 1
