import pyarrow as pa
import pytest

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.expand import MAX_CHILDREN, derive_rows
from fusionforge.pipelines.core.runner import InProcessExecutor
from fusionforge.pipelines.core.source import ORDER_COL, SUBORDER_COL, Source, in_order
from fusionforge.pipelines.core.stage import Resources, Stage, StageSpec


def _batch(ids, orders):
    return pa.table({S.ID: ids, "value": list(range(len(ids))), ORDER_COL: orders})


def test_derived_rows_follow_their_parent_in_input_order():
    batch = _batch(["a", "b", "c"], [0, 1, 2])
    out = derive_rows(batch, [2, 0, 0], ["c#1", "a#1", "a#2"], {"value": [20, 10, 11], "extra": ["x", "y", "z"]})
    assert out.num_rows == 6
    assert out.column(SUBORDER_COL).to_pylist() == [0, 0, 0, MAX_CHILDREN**2, MAX_CHILDREN**2, 2 * MAX_CHILDREN**2]
    ordered = in_order(out)
    assert ordered.column(S.ID).to_pylist() == ["a", "a#1", "a#2", "b", "c", "c#1"]
    assert ordered.column(S.PARENT_ID).to_pylist() == [None, "a", "a", None, None, "c"]
    assert ordered.column("value").to_pylist() == [0, 10, 11, 1, 2, 20]
    assert ordered.column("extra").to_pylist() == [None, "y", "z", None, None, "x"]
    assert SUBORDER_COL not in ordered.column_names and ORDER_COL not in ordered.column_names


def test_rows_derived_from_derived_rows_stay_under_their_parent():
    first = derive_rows(_batch(["a", "b"], [0, 1]), [0, 0], ["a#1", "a#2"], {})
    second = derive_rows(first, [2], ["a#1#1"], {})  # a child of a#1 (row 2 of `first`)
    assert in_order(second).column(S.ID).to_pylist() == ["a", "a#1", "a#1#1", "a#2", "b"]
    assert second.column(SUBORDER_COL).to_pylist()[-1] == MAX_CHILDREN**2 + MAX_CHILDREN
    third = derive_rows(second, [4], ["a#1#1#1"], {})
    with pytest.raises(ValueError, match="three levels"):
        derive_rows(third, [5], ["too deep"], {})


def test_nothing_derived_leaves_the_batch_alone_and_bad_input_is_refused():
    batch = _batch(["a"], [0])
    assert derive_rows(batch, [], [], {}) is batch
    with pytest.raises(ValueError, match="one id"):
        derive_rows(batch, [0], [], {})


class Split(Stage):
    """Each number n becomes n derived records."""

    name = "test_split_v1"
    expands = True
    resources = Resources(batch_size=2)

    def __call__(self, batch):
        parents = [i for i, n in enumerate(batch.column("n").to_pylist()) for _ in range(n)]
        ids = [f"{batch.column(S.ID)[p].as_py()}/{k}" for p, k in zip(parents, _ranks(parents))]
        return derive_rows(batch, parents, ids, {"n": [0] * len(parents)})


def _ranks(parents):
    return [parents[: i + 1].count(p) for i, p in enumerate(parents)]


class Numbers(Source):
    def partitions(self):
        return [0]

    def read(self, partition):
        yield pa.table({S.ID: ["x", "y", "z"], "n": [2, 0, 1]})


def test_in_process_executor_writes_derived_rows_in_order():
    got = {}

    def writer(partition, table):
        got[partition] = table
        return {"partition": partition}

    InProcessExecutor().run(Numbers(), [StageSpec(Split)], writer)
    assert got[0].column(S.ID).to_pylist() == ["x", "x/1", "x/2", "y", "z", "z/1"]
