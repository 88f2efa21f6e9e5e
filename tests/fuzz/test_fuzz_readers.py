"""Property-based fuzzing of every reader with mutated bytes and structures.

Each property holds for any input: no exception escapes (reading, then storing the rows as Arrow),
every record gets exactly one row, and every good record is kept with its content. The readers are
called directly (no Ray). The budget here is small and deterministic (``derandomize``), so the
suite runs the same cases every time in a few seconds; ``bench/fuzz.py`` runs these properties with
many random cases (``FUSIONFORGE_FUZZ_EXAMPLES``) and its findings become the ``@example`` cases.
"""

from __future__ import annotations

import bz2
import copy
import gzip
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadRecord
from fusionforge.pipelines.readers import read_file
from fusionforge.pipelines.readers.base import InputFile, ReaderOptions
from fusionforge.pipelines.readers.guard import records_table
from fusionforge.pipelines.readers.plan import parse_input, plan_inputs, split_jsonl

EXAMPLES = int(os.environ.get("FUSIONFORGE_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize="FUSIONFORGE_FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
COMPRESS = {
    "": lambda data: data,
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".zst": zstandard.ZstdCompressor(write_checksum=True).compress,
}
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8ffff3f0005fe02fe"
    "a7d6a4e40000000049454e44ae426082"
)
TINY_CAP_MB = 0.0002  # 209 bytes: long enough for most lines, short enough to hit now and then

# --- structures -------------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
ids = st.none() | st.text(max_size=6) | st.integers(-5, 10**6) | json_values
text_rows = st.fixed_dictionaries(
    {"text": st.text(max_size=30)}, optional={"id": st.text(min_size=1, max_size=6), "lang": json_values}
)

# Lines a hostile user writes: what Python's json and Arrow choke on, and bytes that are not text at all.
NASTY = [
    b'{"text": "nested", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"text": "a big number", "n": ' + b"9" * 5000 + b"}",
    b'{"text": "just under the digit limit", "n": ' + b"9" * 4300 + b"}",
    b'{"text": "half a surrogate pair \\ud800"}',
    b'{"text": "surrogate id", "id": "\\udc80"}',
    b'{"text": "surrogate key", "\\udfff": 1}',
    b'{"text": "caf\xe9"}',
    b'{"text": "\xed\xa0\x80"}',
    b'{"text": "nan", "x": NaN, "y": -Infinity}',
    b'{"text": 5}',
    b'{"text": null}',
    b"[1, 2, 3]",
    b'"a string"',
    b"null",
    b"\x00\x01\x02",
    b"\xff\xfe{\x00",
    b"   \t  ",
    b"\r",
    b'{"text": "trailing carriage return"}\r',
    b'{"text": "one"} {"text": "two"}',
    b'{"text": "' + b"x" * 300 + b'"}',
    b" " * 400,
]


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with a few random edits: bytes flipped, inserted or deleted, or the end cut off."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if edit == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif edit == "cut":
            del data[at:]
    return bytes(data)


@st.composite
def reshaped(draw, base):
    """A copy of the JSON structure ``base`` with a few nodes replaced (by any JSON value, of any
    type), deleted or wrapped in a list: valid rows bent out of shape where the readers look."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)))
        edit = draw(st.sampled_from(["replace", "replace", "delete", "wrap"]))
        value = _edit(value, path, edit, draw(json_values))
    return value


def _paths(value, prefix=()) -> list[tuple]:
    paths = [prefix]
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        paths += _paths(child, (*prefix, key))
    return paths


def _edit(value, path: tuple, edit: str, new):
    if not path:
        return new if edit == "replace" else [value] if edit == "wrap" else {}
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if edit == "delete":
        del parent[key]
    else:
        parent[key] = new if edit == "replace" else [parent[key]]
    return value


def dumps(value, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def jsonl_lines(draw, good_rows=text_rows) -> bytes:
    """One line of a hostile JSONL file (it may hold newlines of its own)."""
    kind = draw(st.sampled_from(["good", "good", "good", "value", "nasty", "mutated", "binary"]))
    ascii_only = draw(st.booleans())
    if kind == "good":
        return dumps(draw(good_rows), ascii_only)
    if kind == "value":
        return dumps(draw(json_values), ascii_only)
    if kind == "nasty":
        return draw(st.sampled_from(NASTY))
    if kind == "mutated":
        return draw(mutated(dumps(draw(good_rows), ascii_only)))
    return draw(st.binary(max_size=40))


@st.composite
def jsonl_files(draw, good_rows=text_rows) -> bytes:
    """Lines joined by ``\\n`` or ``\\r\\n``, maybe with a byte-order mark and a final newline."""
    lines = draw(st.lists(jsonl_lines(good_rows), max_size=10))
    sep = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = sep.join(lines) + (sep if draw(st.booleans()) else b"")
    return (b"\xef\xbb\xbf" if draw(st.integers(0, 9)) == 0 else b"") + data


# --- what a reader must give ------------------------------------------------------------------------


def expected_lines(data: bytes, cap_mb: float) -> list[tuple[int, bytes | None]]:
    """(line number, the line when it fits the cap, else None) per non-blank line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(n, line if len(line) <= cap_mb * 1024**2 else None) for n, line in enumerate(lines, 1) if line.strip()]


def good_text(line: bytes | None) -> str | None:
    """The text of a record that must be kept: UTF-8, a JSON object with a string text, storable."""
    try:
        row = json.loads(line.decode("utf-8"))
        json.dumps(row, ensure_ascii=False).encode("utf-8")  # a lone surrogate anywhere cannot be stored
    except (AttributeError, ValueError, RecursionError, UnicodeError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        return None
    return row["text"]


def stored_rows(file: InputFile, options: ReaderOptions) -> list[dict]:
    """What the shard step keeps of a file: its rows, as a table of the record schema."""
    return records_table(list(read_file(file, options)), S.RECORD_SCHEMA).to_pylist()


def write(folder: str, name: str, data: bytes) -> str:
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def one_row_each_good_one_kept(rows: list[dict], expected: list[tuple[int, bytes | None]]) -> None:
    assert [r[S.INPUT_POSITION] for r in rows] == [n for n, _ in expected]
    for row, (_, line) in zip(rows, expected):
        text = good_text(line)
        assert (row[S.ERROR] is None) == (text is not None), (line, row[S.ERROR])
        if text is not None:
            assert row[S.TEXT] == text
        else:
            assert row[S.ERROR].startswith("read:") and ": " in row[S.ERROR]


# --- JSONL, plain and compressed --------------------------------------------------------------------


@FUZZ
@given(data=jsonl_files(), compression=st.sampled_from(sorted(COMPRESS)), cap=st.sampled_from([256.0, TINY_CAP_MB]))
@example(data=NASTY[0] + b"\n" + NASTY[1] + b"\n" + b'{"text": "kept"}', compression="", cap=256.0)
@example(data=b"\xef\xbb\xbf", compression="", cap=256.0)  # found by bench/fuzz.py: a lone byte-order mark
@example(data=b'{"text": "a"}\n' + b" " * 300 + b'\n{"text": "b"}', compression=".gz", cap=TINY_CAP_MB)
@example(data=b'{"text": "' + b"y" * 208 + b'\r\r\n{"text": "after"}', compression="", cap=TINY_CAP_MB)
def test_jsonl_text_every_line_one_row_every_good_line_kept(data, compression, cap):
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, f"docs.jsonl{compression}", COMPRESS[compression](data))
        rows = stored_rows(InputFile(path, "docs", "src", "text"), ReaderOptions(max_record_mb=cap))
    one_row_each_good_one_kept(rows, expected_lines(data, cap))


@FUZZ
@given(data=jsonl_files(), cut=st.floats(0.0, 1.0), compression=st.sampled_from([".gz", ".bz2", ".zst"]))
def test_a_cut_compressed_file_keeps_the_lines_before_the_cut_and_says_so(data, cut, compression):
    packed = COMPRESS[compression](data)
    keep = int(len(packed) * cut)
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, f"docs.jsonl{compression}", packed[:keep])
        rows = stored_rows(InputFile(path, "docs", "src", "text"), ReaderOptions())
    damaged = [r for r in rows if r[S.INPUT_POSITION] == -1]
    if 0 < keep < len(packed):
        assert len(damaged) == 1 and rows[-1] is damaged[0]
        assert damaged[0][S.ERROR].startswith("read:unreadable_file: the ")
    else:
        assert damaged == []
    before = rows[:-1] if damaged else rows
    full = expected_lines(data, 256.0)
    one_row_each_good_one_kept(before, full[: len(before)])


@FUZZ
@given(data=jsonl_files(), compression=st.sampled_from([".gz", ".bz2", ".zst"]))
def test_a_damaged_compressed_file_never_raises_and_ends_with_at_most_one_damage_row(data, compression):
    packed = COMPRESS[compression](data)
    with tempfile.TemporaryDirectory() as folder:
        path = write(
            folder, f"docs.jsonl{compression}", packed[:10] + bytes(b ^ 0x5A for b in packed[10:30]) + packed[30:]
        )
        rows = stored_rows(InputFile(path, "docs", "src", "text"), ReaderOptions())
    positions = [r[S.INPUT_POSITION] for r in rows]
    assert positions.count(-1) <= 1 and (-1 not in positions or positions[-1] == -1)
    assert positions[: len(positions) - positions.count(-1)] == sorted(set(p for p in positions if p != -1))


@FUZZ
@given(data=jsonl_files(), piece_bytes=st.integers(1, 200))
def test_a_split_jsonl_file_gives_the_same_rows_as_the_whole_file(data, piece_bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, "docs.jsonl", data)
        whole = InputFile(path, "docs.jsonl", "src", "text")
        options = ReaderOptions(max_record_mb=TINY_CAP_MB)
        in_one = stored_rows(whole, options)
        in_pieces = [row for piece in split_jsonl(whole, piece_bytes) for row in stored_rows(piece, options)]
    assert in_pieces == in_one


# --- Parquet ----------------------------------------------------------------------------------------


@st.composite
def parquet_tables(draw) -> pa.Table:
    n = draw(st.integers(0, 8))
    columns = {
        "text": draw(
            st.one_of(
                st.lists(st.none() | st.text(max_size=20), min_size=n, max_size=n).map(pa.array),
                st.lists(st.integers(-5, 5), min_size=n, max_size=n).map(pa.array),
            )
        ),
        "id": pa.array(draw(st.lists(st.none() | st.text(max_size=5), min_size=n, max_size=n)), pa.string()),
    }
    extra = draw(st.sampled_from(["none", "list", "binary", "struct"]))
    if extra == "list":
        columns["tags"] = pa.array(draw(st.lists(st.lists(st.integers(-3, 3), max_size=3), min_size=n, max_size=n)))
    elif extra == "binary":
        columns["blob"] = pa.array(draw(st.lists(st.binary(max_size=40), min_size=n, max_size=n)), pa.binary())
    elif extra == "struct":
        values = draw(
            st.lists(st.fixed_dictionaries({"a": st.integers(0, 9), "b": st.text(max_size=4)}), min_size=n, max_size=n)
        )
        columns["info"] = pa.array(values)
    return pa.table(columns)


@FUZZ
@given(table=parquet_tables(), damage=st.sampled_from(["none", "cut", "flip"]), at=st.floats(0.0, 1.0))
def test_parquet_every_row_one_row_and_damage_is_one_row_at_the_end(table, damage, at):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "t.parquet")
        pq.write_table(table, path, row_group_size=3)
        data = Path(path).read_bytes()
        where = int(len(data) * at)
        if damage == "cut":
            data = data[:where]
        elif damage == "flip" and where < len(data):
            data = data[:where] + bytes([data[where] ^ 0xFF]) + data[where + 1 :]
        Path(path).write_bytes(data)
        rows = stored_rows(InputFile(path, "t.parquet", "src", "text"), ReaderOptions())
    positions = [r[S.INPUT_POSITION] for r in rows]
    assert positions.count(-1) <= 1 and (-1 not in positions or positions[-1] == -1)
    if damage == "none":
        texts = table.column("text").to_pylist()
        assert positions == list(range(table.num_rows))
        assert [r[S.TEXT] for r in rows] == [t if isinstance(t, str) else None for t in texts]


# --- pairs and interleaved listings ------------------------------------------------------------------

media_values = st.one_of(
    st.just("img.png"),
    st.just("missing.png"),
    st.just(""),
    st.just("/etc/passwd"),
    st.just("../../../../etc/passwd"),
    st.just("a\x00b.png"),
    st.just("https://example.org/x.png"),
    st.text(max_size=10),
    st.fixed_dictionaries({"bytes": json_values}, optional={"path": json_values}),
    json_values,
)
good_pairs = st.fixed_dictionaries(
    {"image": st.just("img.png"), "caption": st.text(max_size=20)}, optional={"id": st.text(min_size=1, max_size=5)}
)
hostile_pairs = st.dictionaries(
    st.sampled_from(["image", "video", "caption", "text", "id", "x"]), media_values, max_size=4
) | reshaped({"image": {"bytes": None, "path": "img.png"}, "caption": "c", "id": "p", "video": "v.mp4"})
good_documents = st.fixed_dictionaries(
    {
        "parts": st.lists(
            st.sampled_from([{"type": "text", "text": "words"}, {"type": "image", "image": "img.png"}]),
            min_size=1,
            max_size=4,
        )
    }
)
hostile_parts = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "image", "video", "audio", 3])},
            optional={"text": json_values, "image": media_values, "path": media_values, "url": media_values},
        ),
        json_values,
    ),
    max_size=4,
)
DOCUMENT = {
    "id": "d",
    "parts": [{"type": "text", "text": "words"}, {"type": "image", "image": "img.png"}, {"type": "video", "path": "v"}],
}
hostile_documents = st.one_of(
    reshaped(DOCUMENT),
    reshaped({"texts": ["a", None], "images": [None, "img.png"]}),
    st.fixed_dictionaries({"parts": hostile_parts | json_values}),
    st.fixed_dictionaries(
        {
            "texts": st.lists(st.none() | st.text(max_size=5) | json_values, max_size=3),
            "images": st.lists(st.none() | media_values, max_size=3),
        }
    ),
)


def _listing_rows(fmt: str, data: bytes) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        write(folder, "img.png", b"not decoded by the reader")
        path = write(folder, "listing.jsonl", data)
        return stored_rows(InputFile(path, "listing.jsonl", "src", fmt), ReaderOptions())


@FUZZ
@given(data=jsonl_files(st.one_of(good_pairs, hostile_pairs)), good=st.lists(good_pairs, max_size=3))
def test_pairs_listing_every_line_one_row_and_good_pairs_kept(data, good):
    data = b"\n".join([dumps(row, True) for row in good] + [data])
    rows = _listing_rows("pairs", data)
    expected = expected_lines(data, 256.0)
    assert [r[S.INPUT_POSITION] for r in rows] == [n for n, _ in expected]
    for row, pair in zip(rows, good):
        assert row[S.ERROR] is None and row[S.TEXT] == pair["caption"] and row[S.MEDIA][0]["uri"].endswith("img.png")


@FUZZ
@given(data=jsonl_files(st.one_of(good_documents, hostile_documents)), good=st.lists(good_documents, max_size=3))
def test_interleaved_listing_every_line_one_row_and_good_documents_kept(data, good):
    data = b"\n".join([dumps(row, True) for row in good] + [data])
    rows = _listing_rows("interleaved", data)
    expected = expected_lines(data, 256.0)
    assert [r[S.INPUT_POSITION] for r in rows] == [n for n, _ in expected]
    for row, document in zip(rows, good):
        assert row[S.ERROR] is None and len(row[S.SEGMENTS]) == len(document["parts"])


# --- WebDataset tars --------------------------------------------------------------------------------

member_names = st.tuples(
    st.sampled_from(["", "", "", "sub/", "../", "/"]),
    st.sampled_from(["k1", "k2", "k3"]),
    st.sampled_from(["txt", "json", "jpg", "png", "mp4", "cls", "0.png"]),
)
member_kinds = st.sampled_from(["file", "file", "file", "file", "symlink", "dir"])
member_data = st.one_of(
    st.binary(max_size=30),
    json_values.map(lambda v: dumps(v, False)),
    reshaped(
        {
            "fusionforge_record": 1,
            "id": "src/x",
            "source": "src",
            "modality": "image",
            "meta": {"k": 1},
            "segments": None,
            "media": [{"kind": "image", "sha256": "00", "width": 2, "height": 2}],
        }
    ).map(lambda v: dumps(v, False)),
    st.sampled_from(NASTY[:8]),
)


def _tar_bytes(members) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for (prefix, key, ext), kind, data in members:
            info = tarfile.TarInfo(f"{prefix}{key}.{ext}")
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
                tar.addfile(info)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _samples(members) -> list[list]:
    """Consecutive non-directory members with one key, as webdataset groups them."""
    groups: list[list] = []
    for member in members:
        (prefix, key, _), kind, _ = member
        if kind == "dir":
            continue
        if groups and groups[-1][0][0][0] + groups[-1][0][0][1] == prefix + key:
            groups[-1].append(member)
        else:
            groups.append([member])
    return groups


@FUZZ
@given(
    members=st.lists(st.tuples(member_names, member_kinds, member_data), max_size=8),
    mutate=st.booleans(),
    data=st.data(),
)
def test_webdataset_every_sample_one_row_refused_members_fail_their_sample(members, mutate, data):
    raw = _tar_bytes(members)
    if mutate:
        raw = data.draw(mutated(raw))
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, "s.tar", raw)
        rows = stored_rows(InputFile(path, "s.tar", "src", "wds"), ReaderOptions())
    if mutate:
        return  # any bytes at all: it is enough that nothing raised and the rows could be stored
    samples = _samples(members)
    assert [r[S.INPUT_POSITION] for r in rows] == list(range(len(samples)))
    for row, sample in zip(rows, samples):
        refused = [m for m in sample if m[0][0] in ("../", "/") or m[1] == "symlink"]
        if refused:
            assert row[S.ERROR].startswith(("read:unsafe_member_path", "read:unsupported_member"))
            continue
        headers = [good_text(m[2]) is not None or _json_ok(m[2]) for m in sample if m[0][2] == "json"]
        restored = any(b"fusionforge_record" in m[2] for m in sample if m[0][2] == "json")
        if all(headers) and not restored:
            assert row[S.ERROR] is None, row[S.ERROR]


def _json_ok(data: bytes) -> bool:
    try:
        json.dumps(json.loads(data.decode("utf-8")), ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError, UnicodeError):
        return False
    return True


# --- planning a folder of anything ------------------------------------------------------------------

file_names = st.tuples(
    st.sampled_from(["a", "b", "img", "sub/c", "sub/img"]),
    st.sampled_from([".jsonl", ".json", ".jsonl.gz", ".parquet", ".tar", ".png", ".mp4", ".txt", ".md", ""]),
)


@FUZZ
@given(
    files=st.dictionaries(
        file_names,
        st.binary(max_size=60) | jsonl_files(st.one_of(text_rows, good_pairs, good_documents)),
        min_size=1,
        max_size=6,
    )
)
def test_planning_a_folder_names_every_file_it_does_not_read(files):
    with tempfile.TemporaryDirectory() as folder:
        for (stem, suffix), data in files.items():
            Path(folder, stem).parent.mkdir(parents=True, exist_ok=True)
            write(folder, stem + suffix, data)
        try:
            plan = plan_inputs([parse_input(f"mix={folder}")])
        except Exception as exc:  # noqa: BLE001 - only "nothing here can be read" may stop planning
            assert "cannot tell the format" in str(exc)
            return
        planned = {f.path for p in plan.partitions for f in p.files}
        skipped = {name for s in plan.skipped for name in s.files}
        media = {str(Path(folder, stem)) for (stem, suffix) in files if suffix in (".png", ".mp4")}
        sidecars = {
            str(Path(folder, stem + suffix))
            for (stem, suffix) in files
            if suffix in (".txt", ".json") and str(Path(folder, stem)) in media
        }
        every = {str(Path(folder, stem + suffix)) for stem, suffix in files}
        assert planned | skipped | sidecars == every and not planned & skipped
        for partition in plan.partitions:
            for file in partition.files:
                records_table(list(read_file(file, ReaderOptions())), S.RECORD_SCHEMA)


# --- chat rows for sft build ------------------------------------------------------------------------

messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", "gpt", 5]) | json_values},
        optional={
            "content": json_values
            | st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["text", "image_url", "refusal"])}, optional={"text": json_values}
                )
                | json_values,
                max_size=3,
            ),
            "tool_calls": json_values
            | st.lists(
                st.fixed_dictionaries(
                    {
                        "function": st.fixed_dictionaries(
                            {"name": json_values, "arguments": json_values | st.text(max_size=10)}
                        )
                    }
                ),
                max_size=2,
            ),
            "function_call": json_values,
            "tool_call_id": json_values,
            "name": json_values,
        },
    ),
    max_size=4,
)
OPENAI_CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "2+3?"}, {"type": "image_url", "image_url": {"url": "x"}}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2}'}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "5"},
        {"role": "assistant", "content": "5"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "add",
                "parameters": {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]},
            },
        }
    ],
}
SHAREGPT_CHAT = {
    "conversations": [
        {"from": "human", "value": "hi"},
        {"from": "function_call", "value": '{"name": "add", "arguments": {"a": 1}}'},
        {"from": "observation", "value": "2"},
        {"from": "gpt", "value": "2"},
    ],
    "tools": '[{"name": "add", "parameters": {"type": "object"}}]',
    "system": "s",
}
ALPACA_CHAT = {"instruction": "Add", "input": "2 and 3", "output": "5", "system": "s", "history": [["hi", "hello"]]}
chat_rows = st.one_of(
    reshaped(OPENAI_CHAT),
    reshaped(SHAREGPT_CHAT),
    reshaped(ALPACA_CHAT),
    st.fixed_dictionaries(
        {"messages": messages | json_values},
        optional={"tools": json_values | st.text(max_size=12), "functions": json_values, "id": ids},
    ),
    st.fixed_dictionaries(
        {
            "conversations": st.lists(
                st.fixed_dictionaries(
                    {"from": st.sampled_from(["human", "gpt", "function_call", "observation", "system"]) | json_values},
                    optional={"value": json_values | st.text(max_size=12)},
                ),
                max_size=4,
            )
            | json_values
        },
        optional={"system": json_values, "tools": json_values},
    ),
    st.fixed_dictionaries(
        {"instruction": json_values, "output": json_values},
        optional={"input": json_values, "system": json_values, "history": json_values},
    ),
    st.dictionaries(
        st.sampled_from(["messages", "conversations", "instruction", "output", "images", "image"]),
        json_values,
        max_size=3,
    ),
)


@FUZZ
@given(row=chat_rows)
@example(row={"messages": [{"role": "user", "content": [{"type": [1]}]}]})
@example(row={"instruction": "a", "output": "b", "history": 5})
@example(
    row={"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "1" * 5000}}]}]}
)
@example(row={**OPENAI_CHAT, "tools": [{"name": "add", "parameters": {"$ref": "#/nowhere"}}]})
def test_sft_chat_rows_parse_or_fail_with_a_reason_and_validate_without_raising(row):
    from fusionforge.mixers.sft.readers import parse_row
    from fusionforge.mixers.sft.validate import validate

    try:
        conversation, media = parse_row(row)
    except BadRecord as exc:
        assert ": " in exc.reason
        return
    assert isinstance(media, list) and isinstance(conversation.messages, list)
    problem = validate(conversation)
    assert problem is None or isinstance(problem, str)


@FUZZ
@given(data=jsonl_files(chat_rows))
def test_sft_input_files_every_line_one_row_and_parsing_never_raises(data):
    from fusionforge.mixers.sft.parts import RowSource, plan
    from fusionforge.mixers.sft.stages import SftParse

    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, "chats.jsonl", data)
        (partition,) = plan([path], 512)
        tables = list(RowSource([partition]).read(partition.index))
    rows = [row for table in tables for row in SftParse()(table).to_pylist()]
    assert [r[S.INPUT_POSITION] for r in rows] == [n for n, _ in expected_lines(data, 256.0)]


# --- prompt files for rft run -----------------------------------------------------------------------

PROMPT = {
    "id": "p",
    "messages": [
        {"role": "system", "content": "Count."},
        {"role": "user", "content": [{"type": "image", "image": "img.png"}, {"type": "text", "text": "How many?"}]},
    ],
    "images": ["img.png"],
    "answer": 3,
    "task": "count",
    "verify": {"rel_tol": 0.1},
    "metadata": {"k": "v"},
}
prompt_rows = reshaped(PROMPT) | st.fixed_dictionaries(
    {},
    optional={
        "id": ids,
        "question": json_values | st.text(max_size=10),
        "messages": messages | json_values,
        "answer": json_values,
        "task": st.sampled_from(["math", "exact", "count", "bbox", "json", "code", "nope"]) | json_values,
        "images": st.lists(media_values, max_size=2) | json_values,
        "verify": json_values,
        "metadata": json_values,
    },
)
good_prompts = st.builds(
    lambda n, q: {"id": f"good-{n}", "question": q + "?", "answer": "2", "task": "exact"},
    st.integers(0, 10**6),
    st.text(min_size=1, max_size=10),
)


@FUZZ
@given(data=jsonl_files(prompt_rows), good=st.lists(good_prompts, max_size=3, unique_by=lambda r: r["id"]))
def test_rft_prompt_files_every_line_one_entry_and_good_prompts_kept(data, good):
    from fusionforge.rft.prompts import load_prompts

    data = b"\n".join([dumps(row, True) for row in good] + [data])
    with tempfile.TemporaryDirectory() as folder:
        write(folder, "img.png", TINY_PNG)
        path = write(folder, "prompts.jsonl", data)
        prompts, invalid = load_prompts(path)
    assert len(prompts) + len(invalid) == len(expected_lines(data, 256.0))
    assert [p.id for p in prompts[: len(good)]] == [row["id"] for row in good]
