"""Merged manifests have small row groups, so reading one input shard decodes little more than that shard."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.pipelines.transform import ManifestSource
from fusionforge.pipelines.writers.manifest import MANIFEST, ROW_GROUP_ROWS, merge_parts
from fusionforge.pipelines.writers.webdataset_writer import PARTS_DIR


def _part(rows: int, first: int, shards: list[str]) -> pa.Table:
    ids = [f"r{first + i:07d}" for i in range(rows)]
    shard = [shards[i * len(shards) // rows] for i in range(rows)]
    return pa.table({"id": ids, "text": [f"text of {i}" for i in ids], "shard": shard, "media": pa.nulls(rows)})


def test_a_large_part_is_merged_into_small_row_groups_and_shards_read_back_whole(tmp_path):
    parts = tmp_path / PARTS_DIR
    parts.mkdir()
    big, small = 3 * ROW_GROUP_ROWS + 100, 50  # a partition as large as a real one, and a short one
    tables = [_part(big, 0, ["s-0.tar", "s-1.tar", "s-2.tar"]), _part(small, big, ["s-3.tar"])]
    for number, table in enumerate(tables):
        pq.write_table(table, parts / f"manifest-{number:06d}.parquet")
        pq.write_table(table.select(["id"]), parts / f"ledger-{number:06d}.parquet")
    assert merge_parts(tmp_path, [0, 1]) == {"manifest": big + small, "ledger": big + small}
    metadata = pq.ParquetFile(tmp_path / MANIFEST).metadata
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert max(groups) == ROW_GROUP_ROWS and sum(groups) == big + small and len(groups) == 5

    source = ManifestSource(tmp_path, columns=["id", "text"])
    whole = pa.concat_tables(tables).select(["id", "text"])
    read = [pa.concat_tables(list(source.read(p))) for p in source.partitions()]
    shards = pa.concat_tables(tables).column("shard").to_pylist()
    assert [t.num_rows for t in read] == [shards.count(name) for name in dict.fromkeys(shards)]
    assert pa.concat_tables(read).equals(whole)
