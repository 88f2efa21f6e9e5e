"""A Ray Data datasource with one read task per partition of a fusionforge ``Source``."""

from __future__ import annotations

from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from fusionforge.pipelines.core.source import Source, tag_batches


class PartitionDatasource(Datasource):
    """Reads ``partitions`` of ``source``; each block carries the partition number and row order."""

    def __init__(self, source: Source, partitions: list[int]) -> None:
        super().__init__()
        self._source = source
        self._partitions = list(partitions)

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None) -> list[ReadTask]:
        source = self._source
        return [
            ReadTask(
                lambda p=p: tag_batches(p, source.read(p)),
                BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None),
            )
            for p in self._partitions
        ]

    def get_name(self) -> str:
        return "FusionforgePartitions"
