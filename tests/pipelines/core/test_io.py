import gzip
import os

import pytest
import zstandard

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import atomic_path, expand_paths, open_text, read_range


def test_atomic_path_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert os.listdir(tmp_path) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"


def test_open_text_reads_gzip_and_zstd(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b"one\ntwo\n"))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"one\ntwo\n"))
    for name in ("a.jsonl.gz", "a.jsonl.zst"):
        with open_text(tmp_path / name) as handle:
            assert handle.read().splitlines() == ["one", "two"]


def test_expand_paths_handles_dirs_globs_and_missing(tmp_path):
    (tmp_path / "d").mkdir()
    for name in ("d/b.jsonl", "d/a.jsonl", "d/.hidden", "c.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in expand_paths(str(tmp_path / "d"))] == ["a.jsonl", "b.jsonl"]
    assert [p.name for p in expand_paths(str(tmp_path / "d" / "*.jsonl"))] == ["a.jsonl", "b.jsonl"]
    with pytest.raises(ConfigError, match="no input files"):
        expand_paths(str(tmp_path / "nothing*"))


def test_read_range_detects_truncation(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    assert read_range(str(path), 2, 3) == b"234"
    with pytest.raises(OSError, match="truncated"):
        read_range(str(path), 8, 5)
