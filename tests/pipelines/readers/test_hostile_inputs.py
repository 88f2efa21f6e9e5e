"""Inputs a hostile user would try: each bad record is one failed row with a reason, never a lost tail
or an exception, and a damaged file is one row saying how much of it could not be read."""

import bz2
import gzip
import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadRecord
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions
from fusionforge.pipelines.readers.plan import parse_input, plan_inputs

COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".zst": zstandard.ZstdCompressor().compress}


def _file(path, fmt="text"):
    return InputFile(str(path), path.name, "src", fmt)


def _lines(n, bad_at=None, bad=b""):
    lines = [json.dumps({"text": f"document {i}"}).encode() for i in range(n)]
    if bad_at is not None:
        lines[bad_at] = bad
    return b"\n".join(lines) + b"\n"


def _reasons(rows):
    return [row[S.ERROR].removeprefix("read:").split(":")[0] for row in rows if row.get(S.ERROR)]


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2", ".zst"])
def test_one_invalid_utf8_byte_fails_its_line_and_keeps_every_other(tmp_path, suffix):
    path = tmp_path / f"docs.jsonl{suffix}"
    data = _lines(1001, bad_at=400, bad=b'{"text": "caf\xe9"}')
    path.write_bytes(COMPRESS[suffix](data) if suffix else data)
    rows = list(read_file(_file(path), ReaderOptions()))
    assert len(rows) == 1001
    assert _reasons(rows) == ["invalid_encoding"] and rows[400][S.INPUT_POSITION] == 401
    assert [r[S.TEXT] for r in rows if not r.get(S.ERROR)] == [f"document {i}" for i in range(1001) if i != 400]


def test_encoded_surrogates_are_invalid_utf8_not_text(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"text": "a"}\n{"text": "\xed\xa0\x80"}\n')  # UTF-8 of U+D800, which UTF-8 forbids
    rows = list(read_file(_file(path), ReaderOptions()))
    assert _reasons(rows) == ["invalid_encoding"] and rows[0][S.TEXT] == "a"


def test_deep_nesting_and_huge_integers_fail_their_lines(tmp_path):
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"text": "before"}),
        '{"text": "deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"text": "big", "n": ' + "1" * 5000 + "}",
        json.dumps({"text": "after"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    rows = list(read_file(_file(path), ReaderOptions()))
    assert _reasons(rows) == ["nesting_too_deep", "number_too_large"]
    assert [r[S.TEXT] for r in rows if not r.get(S.ERROR)] == ["before", "after"]


def test_an_escaped_lone_surrogate_is_a_failed_row_not_a_crash_when_stored(tmp_path):
    from fusionforge.pipelines.readers.guard import records_table

    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "half a pair \\ud800"}\n{"id": "\\udc80", "text": "odd id"}\n')
    rows = list(read_file(_file(path), ReaderOptions()))
    table = records_table(rows, S.RECORD_SCHEMA)
    assert table.num_rows == 3
    assert table.column(S.TEXT).to_pylist()[0] == "fine"
    assert [e.split(":")[1] for e in table.column(S.ERROR).to_pylist()[1:]] == ["invalid_encoding"] * 2


def test_a_line_over_the_record_cap_fails_without_being_held(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(_lines(5, bad_at=2, bad=json.dumps({"text": "x" * 3_000_000}).encode()))
    rows = list(read_file(_file(path), ReaderOptions(max_record_mb=1)))
    assert _reasons(rows) == ["record_too_large"] and "2.9 MB" in rows[2][S.ERROR]
    assert len(rows) == 5 and rows[3][S.TEXT] == "document 3"


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".zst"])
def test_a_cut_compressed_file_keeps_what_was_read_and_says_the_rest_is_missing(tmp_path, suffix):
    path = tmp_path / f"docs.jsonl{suffix}"
    whole = COMPRESS[suffix](_lines(20_000))
    path.write_bytes(whole[: len(whole) * 3 // 4])
    rows = list(read_file(_file(path), ReaderOptions()))
    assert rows[-1][S.INPUT_POSITION] == -1 and rows[-1][S.ERROR].startswith("read:unreadable_file")
    assert "ends inside a compressed member" in rows[-1][S.ERROR]
    assert all(not r.get(S.ERROR) for r in rows[:-1])
    assert [r[S.TEXT] for r in rows[:-1]] == [f"document {i}" for i in range(len(rows) - 1)]


def test_damaged_gzip_says_how_many_bytes_could_not_be_read(tmp_path):
    path = tmp_path / "docs.jsonl.gz"
    whole = gzip.compress(_lines(2000))
    path.write_bytes(whole[:200] + b"\xff" * 64 + whole[264:])
    (row,) = [r for r in read_file(_file(path), ReaderOptions()) if r.get(S.ERROR)]
    assert row[S.ERROR].startswith("read:unreadable_file: the gzip stream is damaged")
    assert f"of {len(whole):,} compressed bytes" in row[S.ERROR]


def test_every_frame_of_a_concatenated_zstd_file_is_read(tmp_path):
    path = tmp_path / "docs.jsonl.zst"
    compress = zstandard.ZstdCompressor().compress
    path.write_bytes(compress(_lines(3)) + compress(json.dumps({"text": "second frame"}).encode() + b"\n"))
    assert [r[S.TEXT] for r in read_file(_file(path), ReaderOptions())][-1] == "second frame"


def test_parquet_with_a_broken_footer_is_one_row_saying_nothing_could_be_read(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["a", "b"]}), path)
    path.write_bytes(path.read_bytes()[:-12])
    (row,) = read_file(_file(path), ReaderOptions())
    assert row[S.ERROR].startswith("read:unreadable_file") and "none of its" in row[S.ERROR]
    with pytest.raises(BadRecord, match="unreadable_file"):
        list(read_file(_file(path), ReaderOptions(strict=True)))


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:  # a symbolic link: refused
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_a_refused_tar_member_fails_its_whole_sample(tmp_path):
    path = tmp_path / "s.tar"
    _tar(path, [("a.jpg", b"JPEG"), ("a.txt", b"kept"), ("b.jpg", None), ("b.txt", b"caption of a refused image")])
    rows = list(read_file(_file(path, "wds"), ReaderOptions()))
    assert len(rows) == 2 and rows[0][S.TEXT] == "kept"
    assert rows[1][S.ERROR].startswith("read:unsupported_member") and rows[1][S.MODALITY] == "image"
    assert not any(r[S.TEXT] == "caption of a refused image" for r in rows)


def test_tar_text_over_the_record_cap_fails_its_sample(tmp_path):
    path = tmp_path / "s.tar"
    _tar(path, [("a.txt", b"x" * 2_000_000), ("b.txt", b"small")])
    rows = list(read_file(_file(path, "wds"), ReaderOptions(max_record_mb=1)))
    assert _reasons(rows) == ["record_too_large"] and rows[1][S.TEXT] == "small"


def test_a_folder_of_mixed_files_reads_each_file_by_its_own_format(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jsonl").write_text(json.dumps({"text": "plain"}) + "\n")
    _tar(folder / "b.tar", [("k.txt", b"from the tar")])
    pq.write_table(pa.table({"text": ["from parquet"]}), folder / "c.parquet")
    (folder / "d.png").write_bytes(b"an image")
    (folder / "d.txt").write_text("its sidecar caption")
    (folder / "notes.md").write_text("no reader for this")
    plan = plan_inputs([parse_input(str(folder))])
    formats = {f.rel: f.format for p in plan.partitions for f in p.files}
    assert formats == {"a.jsonl": "text", "b.tar": "wds", "c.parquet": "text", "d.png": "images"}
    assert [(s.reason, s.files) for s in plan.skipped] == [("unknown_format", (str(folder / "notes.md"),))]


def test_media_next_to_a_listing_are_read_through_it_and_named_in_the_notes(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "p.jpg").write_bytes(b"x")
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"image": "images/p.jpg", "caption": "c"}) + "\n")
    plan = plan_inputs([parse_input(str(tmp_path))])
    assert [f.format for p in plan.partitions for f in p.files] == ["pairs"]
    assert [(s.reason, len(s.files)) for s in plan.skipped] == [("listing_media", 1)]


def test_a_damaged_parquet_in_a_folder_does_not_stop_planning(tmp_path):
    pq.write_table(pa.table({"image": ["x.jpg"], "caption": ["c"]}), tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(b"PAR1 not really parquet")
    plan = plan_inputs([parse_input(str(tmp_path))])
    assert [(f.rel, f.format) for p in plan.partitions for f in p.files] == [
        ("a.parquet", "pairs"),
        ("b.parquet", "pairs"),
    ]


def test_the_output_folder_inside_an_input_is_never_planned(tmp_path):
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "t"}) + "\n")
    out = tmp_path / "out"
    (out / "shards").mkdir(parents=True)
    (out / "manifest.parquet").write_bytes(b"x")
    _tar(out / "shards" / "s-000000-000.tar", [("k.txt", b"an earlier output")])
    plan = plan_inputs([parse_input(str(tmp_path))], output=str(out))
    assert [f.rel for p in plan.partitions for f in p.files] == ["docs.jsonl"]
    (note,) = plan.skipped
    assert note.reason == "output_folder" and len(note.files) == 2


def test_nesting_that_python_parses_but_a_deeper_stack_could_not_fails_when_read(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "300 deep", "x": ' + "[" * 300 + "]" * 300 + '}\n{"text": "flat"}\n')
    rows = list(read_file(_file(path), ReaderOptions()))
    assert _reasons(rows) == ["nesting_too_deep"] and rows[1][S.TEXT] == "flat"


def test_a_file_that_is_only_a_byte_order_mark_has_no_records(tmp_path):  # found by bench/fuzz.py
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b"\xef\xbb\xbf\n" + json.dumps({"text": "x"}).encode() + b"\n\xef\xbb\xbf")
    rows = list(read_file(_file(path), ReaderOptions()))
    assert [r[S.INPUT_POSITION] for r in rows] == [2, 3] and _reasons(rows) == ["malformed_json"]
