"""The surplus spill: untouched pieces land in their partition's file, counted once, whatever a killed run left."""

import numpy as np
import pyarrow as pa

from fusionforge.mixers.packing.items import META_SCHEMA, ItemBatch
from fusionforge.mixers.packing.surplus import SURPLUS_DIR, spill_surplus, surplus_rows


def _batch(partition, row, offset):
    n = len(row)
    meta = pa.table([[f"s{i}" for i in range(n)], ["web"] * n, ["text"] * n, [[]] * n], schema=META_SCHEMA)
    return ItemBatch.build(
        meta,
        kind=np.ones(n, np.int64),
        size=np.full(n, 10),
        vision=np.zeros(n, np.int64),
        partition=np.asarray(partition),
        row=np.asarray(row),
        offset=np.asarray(offset),
    )


def test_untouched_pieces_are_spilled_per_partition_and_counted(tmp_path):
    stale = tmp_path / SURPLUS_DIR / "part-000003.bin"
    stale.parent.mkdir(parents=True)
    np.arange(50, dtype=np.int64).tofile(stale)  # what a killed run left: must not count again
    surplus = {
        # partition 3 row 7 twice (two pieces of one record), row 9 cut by a window (offset > 0): not untouched
        "text": iter([_batch([3, 5, 3, 3], [7, 1, 7, 9], [0, 0, 0, 4]), _batch([5, 5], [2, 1], [0, 0])]),
        "long": iter([_batch([-1, 8], [4, 0], [0, 0])]),  # an item of no known partition is not in any file
        "vision": iter([]),
    }
    counts = spill_surplus(tmp_path, surplus)
    assert counts == {"text": 6, "long": 2, "vision": 0}
    rows, pieces = surplus_rows(tmp_path, 3)
    assert rows.tolist() == [7] and pieces.tolist() == [2]
    rows, pieces = surplus_rows(tmp_path, 5)
    assert rows.tolist() == [1, 2] and pieces.tolist() == [2, 1]
    assert surplus_rows(tmp_path, 8)[0].tolist() == [0]
    assert surplus_rows(tmp_path, 4)[0].tolist() == []  # no surplus there: no file
    assert sorted(p.name for p in (tmp_path / SURPLUS_DIR).iterdir()) == [
        "part-000003.bin",
        "part-000005.bin",
        "part-000008.bin",
    ]
