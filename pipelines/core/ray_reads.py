"""Ray Data reading of a fusionforge ``Source``: one task per partition, retried a bounded number of times.

A read is a task like any other: a file whose reading kills the worker (a native crash, the OOM
killer) must not be retried forever, as Ray Data's read tasks are (their ``ray_remote_args``, the
one way to bound them, is deprecated). So the dataset starts from the partition numbers, and a
``map_batches`` task with ``max_retries`` reads each partition, tagging its batches with the
partition and row order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from fusionforge.pipelines.core.ray_env import TASK_RETRIES, remote_args_allowed
from fusionforge.pipelines.core.source import PARTITION_COL, Source, tag_batches


def read_partitions(ray: Any, source: Source, partitions: list[int]) -> Any:
    """A Ray dataset of ``partitions`` of ``source``, in that order, each batch tagged by ``tag_batches``."""
    ds = ray.data.from_items([{PARTITION_COL: p} for p in partitions], override_num_blocks=len(partitions))
    with remote_args_allowed():
        return ds.map_batches(
            _read, fn_kwargs={"source": source}, batch_size=1, batch_format="pyarrow", max_retries=TASK_RETRIES
        )


def _read(batch: pa.Table, source: Source) -> Iterator[pa.Table]:
    for partition in batch.column(PARTITION_COL).to_pylist():
        yield from tag_batches(partition, source.read(partition))
