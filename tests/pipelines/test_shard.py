import hashlib
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.settings import build_config
from fusionforge.pipelines.readers.base import ReaderOptions
from fusionforge.pipelines.readers.plan import parse_input, plan_inputs
from fusionforge.pipelines.shard import IngestSource, ShardConfig, run_shard


def _inputs(corpus):
    return tuple(f"{name}={path}" for name, path in corpus.items())


def _shard(corpus, out, **kwargs):
    cfg = build_config(
        ShardConfig, {"inputs": _inputs(corpus), "output": str(out), "shard_count": 25, "executor": "local", **kwargs}
    )
    return run_shard(cfg)


def _outputs(out: Path) -> dict[str, bytes]:
    """Every shard's bytes plus the manifest and ledger contents, to compare runs."""
    files = {p.name: p.read_bytes() for p in sorted((out / "shards").glob("*.tar"))}
    files["manifest"] = json.dumps(pq.read_table(out / "manifest.parquet").to_pylist(), default=str).encode()
    ledger = pq.read_table(out / "ledger.parquet").drop_columns(["input_file"])
    files["ledger"] = json.dumps(ledger.to_pylist()).encode()
    return files


@pytest.fixture(scope="module")
def local_run(sample_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    return out, _shard(sample_corpus, out)


def test_every_input_has_a_fate_and_broken_inputs_have_reasons(local_run):
    out, report = local_run
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    assert report["inputs"] == len(ledger) == report["kept"] + report["dropped"] + report["failed"]
    assert len({row["id"] for row in ledger}) == len(ledger)
    reasons = {row["reason"].split(": ")[0] for row in ledger if row["reason"]}
    assert {
        "read:malformed_json",
        "read:missing_field",
        "read:missing_file",
        "probe:undecodable_image",
        "probe:corrupt_video",
        "read:unsafe_member_path",
        "ingest_finalize_v1:empty_text",
    } <= reasons
    by_id = {row["id"]: row for row in ledger}
    assert by_id["news/news-empty"]["status"] == "dropped"
    assert by_id["pairs/pair-missing"]["status"] == "failed"
    malformed = next(r for r in ledger if r["reason"] and r["reason"].startswith("read:malformed_json"))
    assert malformed["input_file"].endswith("news.jsonl.gz") and malformed["input_position"] == 8
    manifest = pq.read_table(out / "manifest.parquet")
    assert manifest.num_rows == report["kept"]
    rejected = pq.read_table(out / "rejected")
    assert rejected.num_rows == report["dropped"] + report["failed"]


def test_manifest_points_at_member_bytes_and_media_are_byte_identical(local_run, sample_corpus):
    out, _ = local_run
    manifest = pq.read_table(out / "manifest.parquet").to_pylist()
    photo = next(r for r in manifest if r[S.SOURCE] == "photos" and r[S.INPUT_FILE].endswith("img_000.png"))
    original = Path(photo[S.INPUT_FILE]).read_bytes()
    media = photo[S.MEDIA][0]
    with open(out / media["uri"], "rb") as handle:
        handle.seek(media["offset"])
        assert handle.read(media["size"]) == original
    assert media["sha256"] == hashlib.sha256(original).hexdigest()
    assert (media["width"], media["height"]) == (128, 96) or (media["width"], media["height"]) in {
        (96, 128),
        (160, 160),
        (200, 120),
    }
    clip = next(r for r in manifest if r[S.MODALITY] == "video")
    assert clip[S.MEDIA][0]["duration_s"] > 1.0 and clip[S.MEDIA][0]["codec"] == "h264"
    member_names = [m["name"] for m in photo["members"]]
    assert member_names == [f"{photo['key']}.json", f"{photo['key']}.txt", f"{photo['key']}.png"]


def test_shards_read_back_with_webdataset_identical_bytes(local_run):
    import webdataset as wds

    out, _ = local_run
    manifest = {r["key"]: r for r in pq.read_table(out / "manifest.parquet").to_pylist()}
    urls = [str(p) for p in sorted((out / "shards").glob("*.tar"))]
    seen = 0
    for sample in wds.WebDataset(urls, shardshuffle=False):
        row = manifest[sample["__key__"]]
        header = json.loads(sample["json"])
        assert header["id"] == row[S.ID]
        for item in row[S.MEDIA]:
            ext = next(m["name"] for m in row["members"] if m["offset"] == item["offset"]).split(".", 1)[1]
            assert hashlib.sha256(sample[ext]).hexdigest() == item["sha256"]
        seen += 1
    assert seen == len(manifest)


@pytest.mark.ray
def test_ray_executor_matches_in_process_and_reads_back_with_ray(ray_session, local_run, sample_corpus, tmp_path):
    local_out, _ = local_run
    ray_out = tmp_path / "ray"
    report = _shard(sample_corpus, ray_out, executor="ray")
    assert report["inputs"] > 0
    assert _outputs(ray_out) == _outputs(local_out)
    ds = ray_session.data.read_webdataset(str(ray_out / "shards"), decoder=None)
    rows = ds.take_all()
    manifest = {r["key"]: r for r in pq.read_table(ray_out / "manifest.parquet").to_pylist()}
    assert len(rows) == len(manifest)
    checked = 0
    for row in rows:
        expected = manifest[row["__key__"]]
        media_members = [m["name"] for m in expected["members"] if not m["name"].endswith((".json", ".txt"))]
        hashes = {item["sha256"] for item in expected[S.MEDIA]}
        for name in media_members:
            assert hashlib.sha256(row[name.split(".", 1)[1]]).hexdigest() in hashes
            checked += 1
    assert checked == sum(len(r[S.MEDIA]) for r in manifest.values()) > 50


def test_shard_count_and_size_limits(sample_corpus, tmp_path):
    by_count = _shard({"web": sample_corpus["web"]}, tmp_path / "count", shard_count=10, shard_size_mb=None)
    sizes = []
    for path in sorted((tmp_path / "count" / "shards").glob("*.tar")):
        with tarfile.open(path) as tar:
            sizes.append(len([m for m in tar.getnames() if m.endswith(".json")]))
    assert by_count["shards"] == len(sizes) and max(sizes) == 10 and sum(sizes) == by_count["kept"]
    limit = 0.02 * 1024**2
    by_size = _shard({"photos": sample_corpus["photos"]}, tmp_path / "size", shard_count=None, shard_size_mb=0.02)
    assert by_size["shards"] >= 5
    for path in (tmp_path / "size" / "shards").glob("*.tar"):
        with tarfile.open(path) as tar:
            members = tar.getmembers()
        used = sum(512 + -(-m.size // 512) * 512 for m in members)
        assert used <= limit or len(members) == 3, f"{path.name} holds {used} bytes of members"


def test_same_input_and_seed_give_identical_output_and_shuffle_is_seeded(sample_corpus, tmp_path):
    corpus = {"web": sample_corpus["web"], "photos": sample_corpus["photos"]}
    _shard(corpus, tmp_path / "a", shuffle=True, seed=3)
    _shard(corpus, tmp_path / "b", shuffle=True, seed=3)
    _shard(corpus, tmp_path / "c", shuffle=True, seed=4)
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "b")
    assert _outputs(tmp_path / "a") != _outputs(tmp_path / "c")


def test_refuses_to_overwrite_and_resume_checks_the_plan(sample_corpus, tmp_path):
    corpus = {"web": sample_corpus["web"]}
    _shard(corpus, tmp_path / "o")
    with pytest.raises(ConfigError, match="not empty"):
        _shard(corpus, tmp_path / "o")
    with pytest.raises(ConfigError, match="differ"):
        _shard(corpus, tmp_path / "o", resume=True, shard_count=7)
    again = _shard(corpus, tmp_path / "o", resume=True)
    assert again["kept"] == pq.read_table(tmp_path / "o" / "manifest.parquet").num_rows


def _repeated_id_corpus(root: Path) -> dict[str, str]:
    """Two files of one source that reuse ids; one own id even looks like a derived id of b.jsonl."""
    folder = root / "s"
    folder.mkdir()
    rows_a = [
        {"id": "X", "text": "first x"},
        {"id": "Y", "text": "y"},
        {"id": "X", "text": "second x, same file"},
        {"id": "b.jsonl#3", "text": "an own id shaped like a derived one"},
    ]
    rows_b = [{"id": "X", "text": "third x, other file"}, {"id": "Z", "text": "z"}, {"text": "no id of its own"}]
    for name, rows in (("a.jsonl", rows_a), ("b.jsonl", rows_b)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"s": str(folder)}


def _ids_by_place(out: Path) -> dict[tuple[str, int], tuple[str, str, str]]:
    manifest = {r[S.ID]: r for r in pq.read_table(out / "manifest.parquet").to_pylist()}
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    assert len({r[S.ID] for r in ledger}) == len(ledger) and len(manifest) == len(ledger)
    return {
        (Path(r[S.INPUT_FILE]).name, r[S.INPUT_POSITION]): (r[S.ID], r["status"], manifest[r[S.ID]][S.META])
        for r in ledger
    }


EXPECTED_IDS = {
    ("a.jsonl", 1): "s/X",
    ("a.jsonl", 2): "s/Y",
    ("a.jsonl", 3): "s/a.jsonl#3",
    ("a.jsonl", 4): "s/b.jsonl#3",
    ("b.jsonl", 1): "s/b.jsonl#1",
    ("b.jsonl", 2): "s/Z",
    ("b.jsonl", 3): "s/b.jsonl#3~2",
}


@pytest.mark.parametrize("split", ["one_partition", "per_file", "per_line"])
def test_repeated_ids_get_position_ids_whatever_the_partitioning(tmp_path, split):
    corpus = _repeated_id_corpus(tmp_path)
    sizes = [p.stat().st_size for p in Path(corpus["s"]).iterdir()]
    partition_mb = {"one_partition": 1.0, "per_file": (max(sizes) + 0.5) / 1024**2, "per_line": 1e-5}[split]
    report = _shard(corpus, tmp_path / "out", partition_mb=partition_mb)
    assert report["partitions"] == {"one_partition": 1, "per_file": 2, "per_line": 7}[split]
    places = _ids_by_place(tmp_path / "out")
    assert {place: record_id for place, (record_id, _, _) in places.items()} == EXPECTED_IDS
    assert all(status == "kept" for _, status, _ in places.values())
    metas = {place: json.loads(meta) for place, (_, _, meta) in places.items()}
    assert metas[("a.jsonl", 3)] == {"input_id": "X", "repeated_id": "s/X"}
    assert metas[("b.jsonl", 1)] == {"input_id": "X", "repeated_id": "s/X"}
    assert metas[("b.jsonl", 3)] == {"repeated_id": "s/b.jsonl#3"}
    assert metas[("a.jsonl", 1)] == {"input_id": "X"}
    assert report["repeated_ids"] == 3
    assert report["rerun_partitions"] == {"one_partition": 0, "per_file": 1, "per_line": 3}[split]
    headers = []
    for path in sorted((tmp_path / "out" / "shards").glob("*.tar")):
        with tarfile.open(path) as tar:
            headers += [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
    assert sorted(h["id"] for h in headers) == sorted(EXPECTED_IDS.values())


def test_a_run_killed_while_renaming_repeated_ids_resumes_to_the_same_output(tmp_path, monkeypatch):
    from fusionforge.pipelines.core.progress import quiet
    from fusionforge.pipelines.core.runner import InProcessExecutor

    corpus = _repeated_id_corpus(tmp_path)
    _shard(corpus, tmp_path / "clean", partition_mb=1e-5)
    real_run, calls = InProcessExecutor.run, []

    def killed_in_the_rerun(self, source, stages, writer, partitions=None, progress=quiet):
        calls.append(list(partitions))
        if len(calls) == 2:  # the first rerun: markers of the partitions to rerun are gone, nothing written yet
            raise KeyboardInterrupt
        return real_run(self, source, stages, writer, partitions, progress)

    monkeypatch.setattr(InProcessExecutor, "run", killed_in_the_rerun)
    with pytest.raises(KeyboardInterrupt):
        _shard(corpus, tmp_path / "killed", partition_mb=1e-5)
    monkeypatch.setattr(InProcessExecutor, "run", real_run)
    assert not (tmp_path / "killed" / "_SUCCESS").exists()
    report = _shard(corpus, tmp_path / "killed", partition_mb=1e-5, resume=True)
    assert report["skipped_partitions"] == 7 - len(calls[1])
    assert _outputs(tmp_path / "killed") == _outputs(tmp_path / "clean")


@pytest.mark.ray
def test_repeated_ids_on_ray_match_in_process(ray_session, tmp_path):
    corpus = _repeated_id_corpus(tmp_path)
    _shard(corpus, tmp_path / "local", partition_mb=1e-5)
    report = _shard(corpus, tmp_path / "ray", partition_mb=1e-5, executor="ray")
    assert report["rerun_partitions"] == 3
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")


def test_the_planned_bytes_are_the_input_files_also_when_a_jsonl_file_is_split(tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"text": f"line {i} " + "x" * (i % 50)}) + "\n" for i in range(4000)))
    small = tmp_path / "small.jsonl"
    small.write_text('{"text": "one"}\n')
    plan = plan_inputs([parse_input(f"a={big}"), parse_input(f"b={small}")], partition_mb=0.02)
    assert len(plan.partitions) > 5  # the big file is read in byte ranges
    source = IngestSource(plan.partitions, ReaderOptions())
    assert source.planned_bytes() == big.stat().st_size + small.stat().st_size
