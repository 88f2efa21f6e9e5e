"""``shard`` given what a hostile user would give it: every input record gets exactly one ledger row,
a bad record or a damaged file never stops the run, and the run's own output is never read back."""

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.progress import UNIT
from fusionforge.pipelines.core.settings import build_config
from fusionforge.pipelines.shard import ShardConfig, run_shard


def _config(inputs, out, **kwargs) -> ShardConfig:
    return build_config(ShardConfig, {"inputs": tuple(inputs), "output": str(out), "executor": "local", **kwargs})


def _shard(inputs, out, **kwargs):
    return run_shard(_config(inputs, out, **kwargs))


def _ledger(out: Path) -> list[dict]:
    return pq.read_table(out / "ledger.parquet").to_pylist()


def _reason(row):
    return row["reason"].split(": ")[0] if row["reason"] else None


def _docs(path: Path, n: int, bad: dict[int, bytes]) -> None:
    lines = [json.dumps({"text": f"document number {i}"}).encode() for i in range(n)]
    for index, line in bad.items():
        lines[index] = line
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.parametrize("partition_mb", [512, 0.004])
def test_an_invalid_utf8_byte_costs_one_ledger_row_whatever_the_partitioning(tmp_path, partition_mb):
    path = tmp_path / "docs.jsonl"
    _docs(path, 1001, {400: b'{"text": "caf\xe9 au lait"}'})
    report = _shard([str(path)], tmp_path / "out", partition_mb=partition_mb)
    ledger = _ledger(tmp_path / "out")
    assert report["partitions"] == 1 if partition_mb == 512 else report["partitions"] > 5
    assert len(ledger) == report["inputs"] == 1001 and report["kept"] == 1000
    (failed,) = [r for r in ledger if r["status"] == "failed"]
    assert _reason(failed) == "read:invalid_encoding" and failed[S.INPUT_POSITION] == 401


def test_deep_nesting_and_a_5000_digit_integer_fail_their_records_and_the_run_goes_on(tmp_path):
    path = tmp_path / "docs.jsonl"
    deep = b'{"text": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    _docs(path, 6, {1: deep, 4: b'{"text": "big", "n": ' + b"7" * 5000 + b"}"})
    report = _shard([str(path)], tmp_path / "out")
    reasons = sorted(_reason(r) for r in _ledger(tmp_path / "out") if r["status"] == "failed")
    assert reasons == ["read:nesting_too_deep", "read:number_too_large"]
    assert (report["inputs"], report["kept"]) == (6, 4)


@pytest.mark.ray
def test_on_ray_deep_nesting_and_huge_integers_lose_no_good_record(ray_session, tmp_path):
    path = tmp_path / "docs.jsonl"
    deep = b'{"text": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    _docs(path, 40, {3: deep, 30: b'{"text": "big", "n": ' + b"7" * 5000 + b"}"})
    report = _shard([str(path)], tmp_path / "out", executor="ray", partition_mb=0.001)
    assert (report["inputs"], report["kept"], report["failed"]) == (40, 38, 2)


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_folder_with_a_tar_among_jsonl_files_reads_every_file(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _docs(folder / "a.jsonl", 3, {})
    _tar(folder / "b.tar", [("k1.txt", b"a text sample from a tar"), ("k2.txt", b"another one")])
    pq.write_table(pa.table({"text": ["a parquet row"]}), folder / "c.parquet")
    (folder / "README.md").write_text("not data")
    report = _shard([f"mixed={folder}"], tmp_path / "out")
    by_file = {}
    for row in _ledger(tmp_path / "out"):
        by_file[Path(row[S.INPUT_FILE]).name] = by_file.get(Path(row[S.INPUT_FILE]).name, 0) + 1
    assert by_file == {"a.jsonl": 3, "b.tar": 2, "c.parquet": 1} and report["kept"] == 6
    (note,) = report["skipped_inputs"]
    assert (note["reason"], note["files"], note["examples"]) == ("unknown_format", 1, [str(folder / "README.md")])


def test_the_output_folder_inside_the_input_is_not_read_back_and_its_resume_works(tmp_path):
    for name in ("a", "b", "c"):
        _docs(tmp_path / f"{name}.jsonl", 5, {})
    out = tmp_path / "out"

    def killed_after_the_first_partition(event, data):
        if event == UNIT:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_shard(_config([f"docs={tmp_path}"], out, partition_mb=1e-4), killed_after_the_first_partition)
    assert any(out.rglob("*.tar")) and not (out / "_SUCCESS").exists()
    resumed = _shard([f"docs={tmp_path}"], out, partition_mb=1e-4, resume=True)
    assert resumed["inputs"] == 15 and resumed["skipped_partitions"] == 1
    assert {Path(r[S.INPUT_FILE]).name for r in _ledger(out)} == {"a.jsonl", "b.jsonl", "c.jsonl"}
    (note,) = resumed["skipped_inputs"]
    assert note["reason"] == "output_folder" and note["files"] >= 2
    finished = _shard([f"docs={tmp_path}"], out, partition_mb=1e-4, resume=True)
    assert finished["inputs"] == 15


def test_an_earlier_output_folder_as_input_gives_its_records_not_its_bookkeeping(tmp_path):
    _docs(tmp_path / "docs.jsonl", 5, {})
    first = tmp_path / "first"
    _shard([str(tmp_path / "docs.jsonl")], first)
    again = _shard([f"again={first}"], tmp_path / "again")
    assert (again["inputs"], again["kept"], again["failed"]) == (5, 5, 0)  # read from first's shards
    (note,) = again["skipped_inputs"]
    assert note["reason"] == "run_bookkeeping"
    left_out = {Path(p).relative_to(first).parts[0] for p in _bookkeeping(first)}
    assert {"ledger.parquet", "manifest.parquet", "report.json", "_work", "_markers"} <= left_out
    assert note["files"] == len(_bookkeeping(first))


def _bookkeeping(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".tar")]


def test_a_parquet_with_a_broken_footer_is_a_failed_row_not_a_stopped_run(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["one", "two"]}), folder / "a.parquet")
    (folder / "b.parquet").write_bytes((folder / "a.parquet").read_bytes()[:-10])
    report = _shard([str(folder / "b.parquet"), f"good={folder / 'a.parquet'}"], tmp_path / "out")
    assert (report["inputs"], report["kept"], report["failed"]) == (3, 2, 1)
    (failed,) = [r for r in _ledger(tmp_path / "out") if r["status"] == "failed"]
    assert _reason(failed) == "read:unreadable_file" and "bytes could be read" in failed["reason"]
