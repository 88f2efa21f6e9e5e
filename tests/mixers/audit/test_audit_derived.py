"""Records a step derives (scene clips) show as an addition in the funnel, and the funnel still adds up."""

from fusionforge.mixers.audit import run_audit
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.filter_config import parse_filters
from fusionforge.pipelines.quality import QualityConfig, run_quality
from fusionforge.pipelines.shard import ShardConfig, run_shard
from fusionforge.pipelines.transform import TransformConfig


def test_derived_scene_clips_are_an_addition_in_the_funnel(sample_corpus, tmp_path):
    shards, filtered = tmp_path / "shards", tmp_path / "filtered"
    run_shard(
        ShardConfig(inputs=(f"clips={sample_corpus['clips']}",), output=str(shards), run=RunSettings(executor="local"))
    )
    filters = tuple(parse_filters({"filters": ["video_scenes_v1"]}, "test"))
    report = run_quality(
        QualityConfig(
            TransformConfig(input=str(shards), output=str(filtered), run=RunSettings(executor="local")), filters
        )
    )
    assert report["derived"] >= 3
    rows = run_audit([str(shards), str(filtered)])["funnel"]["all"]
    derived = [r for r in rows if r["stage"] == "derived records"]
    assert derived == [
        {
            "step": "filter",
            "stage": "derived records",
            "status": None,
            "removed": -report["derived"],
            "remaining": report["inputs"] + report["derived"],
            "removed_tokens": None,
        }
    ]
    assert not [r for r in rows if r["stage"] == "not carried over"]
    assert rows[-1]["remaining"] == report["kept"]
