"""The sketch store's random access: thumbnails read for the items asked, across files and row groups."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.filters.dedup.image_hash import THUMB_SIDE
from fusionforge.pipelines.dedupe.store import ITEM_ROW_GROUP, SLOTS, SketchReader, _save_parquet, file_path

THUMB = THUMB_SIDE * THUMB_SIDE * 3


def _items_file(root, partition: int, first_row: int, rows: int, rng) -> dict[int, bytes | None]:
    """An items file as the sketch writer orders it (text items, then media items), some without thumbnails."""
    text = [(first_row + r) * SLOTS for r in range(rows)]
    media = [(first_row + r) * SLOTS + 1 + k for r in range(rows) for k in range(r % 2)]
    thumbs = {item: None for item in text}
    thumbs.update({item: rng.integers(0, 256, THUMB * (1 + item % 3), np.uint8).tobytes() for item in media})
    table = pa.table({"item": list(thumbs), "thumbs": pa.array(list(thumbs.values()), pa.binary())})
    _save_parquet(file_path(root, "items", partition, "parquet"), table, ITEM_ROW_GROUP)
    return thumbs


def test_thumbs_of_reads_the_asked_items_of_every_file_and_nothing_else(tmp_path):
    rng = np.random.default_rng(0)
    starts = (0, 2000)
    stored = {**_items_file(tmp_path, 0, 0, 2000, rng), **_items_file(tmp_path, 1, 2000, 1500, rng)}
    assert pq.read_metadata(file_path(tmp_path, "items", 0, "parquet")).num_row_groups == 3  # 3,000 rows

    media = [item for item, blob in stored.items() if blob is not None]
    asked = np.array([*rng.choice(media, 40, replace=False), media[0], 5 * SLOTS, 3499 * SLOTS + 7], np.int64)
    got = SketchReader(tmp_path, starts).thumbs_of(asked)

    assert set(got) == set(asked.tolist())
    for item in asked.tolist():
        blob = stored.get(item)
        expected = np.frombuffer(blob or b"", np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE, 3)
        assert got[item].shape == expected.shape and np.array_equal(got[item], expected), item
    assert {got[item].shape[0] for item in asked.tolist()} >= {0, 1, 2}  # none, one and several thumbnails
