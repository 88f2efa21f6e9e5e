import pyarrow as pa
import pytest

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import SchemaError
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.core.source import Source
from fusionforge.pipelines.job import Job, run_job
from fusionforge.pipelines.writers.webdataset_writer import ShardLayout


class FixedIdSource(Source):
    """Records that carry their ids already (like an earlier output): ``ids[p]`` per partition."""

    def __init__(self, ids):
        self.ids = ids

    def partitions(self):
        return list(range(len(self.ids)))

    def read(self, partition):
        rows = [
            {S.ID: i, S.SOURCE: "s", S.MODALITY: "text", S.TEXT: f"text of {i}", S.INPUT_FILE: "f", S.INPUT_POSITION: n}
            for n, i in enumerate(self.ids[partition])
        ]
        yield pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA)


def _job(source, out):
    return Job(
        step="test",
        layout=ShardLayout(str(out), "test", None, 10),
        source=source,
        stages=[],
        fingerprint={},
        config={},
        run=RunSettings(executor="local"),
    )


def test_records_with_fixed_ids_repeated_across_partitions_are_an_error(tmp_path):
    with pytest.raises(SchemaError, match="'s/b' of partition 2 is also used by an earlier partition"):
        run_job(_job(FixedIdSource([["s/a", "s/b"], ["s/c"], ["s/b", "s/d"]]), tmp_path / "o"))
    assert not (tmp_path / "o" / "_SUCCESS").exists()
    with pytest.raises(SchemaError, match="duplicate"):
        run_job(_job(FixedIdSource([["s/a", "s/a"]]), tmp_path / "p"))


def test_unique_ids_pass_and_the_report_counts_partitions(tmp_path):
    report = run_job(_job(FixedIdSource([["s/a", "s/b"], ["s/c"]]), tmp_path / "o"))
    assert (report["kept"], report["partitions"], report["rerun_partitions"], report["repeated_ids"]) == (3, 2, 0, 0)
