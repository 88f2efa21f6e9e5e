import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dedupe_inputs import baseline_run, local_config, sharded_corpus

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.core.stage import ScoringStage, StageSpec
from fusionforge.pipelines.dedupe import DedupeConfig, run, run_dedupe
from fusionforge.pipelines.transform import TransformConfig, run_transform


@pytest.fixture(scope="module")
def sharded():
    root, _ = sharded_corpus()
    return root / "in", baseline_run()[0]


_cfg = local_config


def _same_output(a, b):
    for name in ("manifest.parquet", "ledger.parquet", "clusters.parquet"):
        assert pq.read_table(a / name).equals(pq.read_table(b / name)), name
    names = sorted(p.name for p in (a / "shards").glob("*.tar"))
    assert names == sorted(p.name for p in (b / "shards").glob("*.tar"))
    for name in names:
        assert (a / "shards" / name).read_bytes() == (b / "shards" / name).read_bytes(), name


def test_killed_in_the_sketch_phase_resumes_to_the_same_output(sharded, tmp_path, monkeypatch):
    src, baseline = sharded
    real = run.write_sketches

    def dies_at_partition_3(root, starts, params, partition, table):
        if partition == 3:
            raise KeyboardInterrupt("killed")
        return real(root, starts, params, partition, table)

    monkeypatch.setattr(run, "write_sketches", dies_at_partition_3)
    with pytest.raises(KeyboardInterrupt):
        run_dedupe(_cfg(src, tmp_path / "out"))
    assert len(list((tmp_path / "out" / "_markers").glob("dedupe-sketch-*"))) == 3
    monkeypatch.setattr(run, "write_sketches", real)
    with pytest.raises(Exception, match="not empty"):
        run_dedupe(_cfg(src, tmp_path / "out"))
    report = run_dedupe(_cfg(src, tmp_path / "out", resume=True))
    assert report["inputs"] == report["kept"] + report["dropped"] + report["failed"]
    _same_output(tmp_path / "out", baseline)


def test_killed_while_writing_resumes_without_redoing_the_global_phase(sharded, tmp_path, monkeypatch):
    src, baseline = sharded
    real = run.run_transform
    monkeypatch.setattr(run, "run_transform", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt("killed")))
    with pytest.raises(KeyboardInterrupt):
        run_dedupe(_cfg(src, tmp_path / "out"))
    assert (tmp_path / "out" / "clusters.parquet").exists()
    monkeypatch.setattr(run, "run_transform", real)
    monkeypatch.setattr(run, "_global_phase", lambda *a, **k: pytest.fail("the global phase ran again"))
    run_dedupe(_cfg(src, tmp_path / "out", resume=True))
    _same_output(tmp_path / "out", baseline)
    again = run_dedupe(_cfg(src, tmp_path / "out", resume=True))  # finished: the report, nothing redone
    assert again["step"] == "dedupe"


def test_an_unreadable_image_fails_its_record_and_the_run_goes_on(sharded, tmp_path):
    src, _ = sharded
    broken = tmp_path / "in"
    shutil.copytree(src, broken)
    manifest = pq.read_table(broken / "manifest.parquet").to_pylist()
    row = next(r for r in manifest if r[S.ID] == "photos/p6.png#0")
    item = row[S.MEDIA][0]
    with open(broken / item["uri"], "r+b") as handle:
        handle.seek(item["offset"])
        handle.write(b"\0" * item["size"])
    report = run_dedupe(_cfg(broken, tmp_path / "out"))
    assert report["failed"] == 1 and report["inputs"] == report["kept"] + report["dropped"] + 1
    ledger = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()}
    assert ledger["photos/p6.png#0"]["status"] == "failed"
    assert ledger["photos/p6.png#0"]["reason"].startswith("dedupe:undecodable_image")


class Score(ScoringStage):
    """A made-up quality score: the number of distinct words, negated for the 'web' source."""

    name = "test_dedupe_score_v1"

    def score(self, batch):
        texts, sources = batch.column(S.TEXT).to_pylist(), batch.column(S.SOURCE).to_pylist()
        values = [len(set((t or "").split())) * (-1 if s == "web" else 1) for t, s in zip(texts, sources)]
        return {"score": pa.array(values, pa.float64())}

    def decide(self, scores):
        return [None] * len(scores["score"])


def test_keep_best_by_a_score_column(sharded, tmp_path):
    src, _ = sharded
    run_transform(
        TransformConfig(input=str(src), output=str(tmp_path / "scored"), run=RunSettings(executor="local")),
        "score",
        [StageSpec(Score)],
        {},
    )
    run_dedupe(_cfg(tmp_path / "scored", tmp_path / "out", keep="best:test_dedupe_score_v1__score"))
    reasons = {r["id"]: r["reason"] for r in pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()}
    assert reasons["forum/copy-a"] is None and reasons["web/d0000"] == "dedupe:exact_dup_of:forum/copy-a"
    assert reasons["web/d0002"] == "dedupe:near_dup_of:forum/longer"


@pytest.mark.slow
@pytest.mark.ray
def test_ray_and_in_process_give_identical_outputs(ray_session, sharded, tmp_path):
    src, baseline = sharded
    report = run_dedupe(
        DedupeConfig(
            input=str(src),
            output=str(tmp_path / "ray"),
            run=RunSettings(executor="ray"),
            rows_per_shuffle_partition=3000,
        )
    )
    assert report["executor"]["chosen"] == "ray" and report["dedupe"]["shuffle_partitions"] > 1
    _same_output(tmp_path / "ray", baseline)
