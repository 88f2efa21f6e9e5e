import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadRecord
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions


def _file(path, fmt="text", source="src"):
    return InputFile(str(path), path.name, source, fmt)


def test_jsonl_text_rows_ids_and_meta(tmp_path):
    path = tmp_path / "docs.jsonl.gz"
    lines = [
        json.dumps({"id": "a1", "text": "first", "lang": "en"}),
        "",
        json.dumps({"text": "no id"}),
        '{"text": "broken',
        json.dumps({"body": "wrong field"}),
        json.dumps({"id": "a1", "text": "same id"}),
    ]
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    rows = list(read_file(_file(path), ReaderOptions()))
    assert [r[S.INPUT_POSITION] for r in rows] == [1, 3, 4, 5, 6]
    assert rows[0][S.ID] == "src/a1" and json.loads(rows[0][S.META]) == {"input_id": "a1", "lang": "en"}
    assert rows[1][S.ID] == "src/docs.jsonl.gz#3"
    assert rows[2][S.ERROR].startswith("read:malformed_json") and "line 4" in rows[2][S.ERROR]
    assert rows[3][S.ERROR].startswith("read:missing_field")
    assert rows[4][S.ID] == "src/a1"  # the reader keeps it; claim_id (shard's source) gives it another


def test_exact_duplicate_texts_keep_distinct_ids(tmp_path):
    path = tmp_path / "dups.jsonl"
    path.write_text("\n".join(json.dumps({"text": "same words"}) for _ in range(3)))
    ids = [r[S.ID] for r in read_file(_file(path), ReaderOptions())]
    assert len(set(ids)) == 3


def test_parquet_text_with_configured_field_names(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"doc_id": ["x", "y"], "content": ["alpha", "beta"], "score": [1.0, 2.0]}), path)
    rows = list(read_file(_file(path), ReaderOptions(id_field="doc_id", text_field="content")))
    assert [(r[S.ID], r[S.TEXT]) for r in rows] == [("src/x", "alpha"), ("src/y", "beta")]
    assert json.loads(rows[1][S.META]) == {"input_id": "y", "score": 2.0}


def test_strict_mode_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(BadRecord, match=r"bad.jsonl:2"):
        list(read_file(_file(path), ReaderOptions(strict=True)))


def test_pairs_resolve_relative_paths_and_report_missing_files(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"not checked here")
    listing = tmp_path / "pairs.jsonl"
    listing.write_text(
        "\n".join(
            [
                json.dumps({"image": "img/a.jpg", "caption": "a cat"}),
                json.dumps({"image": "img/missing.png", "caption": "gone"}),
            ]
        )
    )
    rows = list(read_file(_file(listing, "pairs"), ReaderOptions()))
    assert rows[0][S.MODALITY] == "image" and rows[0][S.TEXT] == "a cat"
    assert rows[0][S.MEDIA][0]["uri"] == str(tmp_path / "img" / "a.jpg")
    assert rows[0][S.MEDIA][0]["format"] == "jpeg"
    assert rows[1][S.ERROR].startswith("read:missing_file")


def test_pairs_listing_videos_by_the_video_field(tmp_path):
    from fusionforge.pipelines.readers.plan import detect_structured

    (tmp_path / "clip.mp4").write_bytes(b"not checked here")
    listing = tmp_path / "clips.jsonl"
    listing.write_text(
        "\n".join(
            [
                json.dumps({"clip": "clip.mp4", "caption": "a clip", "fps": 24}),
                json.dumps({"caption": "no media"}),
                json.dumps({"clip": "gone.mp4"}),
            ]
        )
    )
    assert detect_structured(listing) == "text"  # detection knows the default names only
    rows = list(read_file(_file(listing, "pairs"), ReaderOptions(video_field="clip")))
    assert rows[0][S.MODALITY] == "video" and rows[0][S.MEDIA][0]["kind"] == "video"
    assert rows[0][S.MEDIA][0]["format"] == "mp4" and json.loads(rows[0][S.META]) == {"fps": 24}
    assert rows[1][S.ERROR] == "read:missing_field: no 'image' or 'clip' path"
    assert rows[2][S.MODALITY] == "video" and rows[2][S.ERROR].startswith("read:missing_file")
    listing.write_text(json.dumps({"video": "clip.mp4", "caption": "default field name"}))
    assert detect_structured(listing) == "pairs"


def test_pairs_accept_embedded_bytes(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"image": [{"bytes": b"\x89PNG...", "path": "x.png"}], "caption": ["inline"]}), path)
    (row,) = read_file(_file(path, "pairs"), ReaderOptions())
    assert row[S.MEDIA][0]["bytes"] == b"\x89PNG..." and row[S.MEDIA][0]["format"] == "png"
