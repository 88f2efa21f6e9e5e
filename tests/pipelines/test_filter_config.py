import pytest

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.filter_config import (
    FilterEntry,
    apply_overrides,
    build_specs,
    default_filters,
    parse_filters,
    with_resources,
    with_setting,
)


def test_parse_names_mappings_and_resources():
    entries = parse_filters(
        {
            "filters": [
                "text_lang_id_v1",
                {"stage": "image_clip_score_v1", "pretrained": "w.pt", "resources": {"num_gpus": 1, "batch_size": 8}},
            ]
        }
    )
    assert entries == [
        FilterEntry("text_lang_id_v1"),
        FilterEntry("image_clip_score_v1", {"pretrained": "w.pt"}, {"num_gpus": 1, "batch_size": 8}),
    ]
    for bad, message in [
        ({"filters": [{"params": 1}]}, "stage"),
        ({"filters": [], "x": 1}, "unknown top-level"),
        ({"filters": [{"stage": "a", "resources": {"gpu": 1}}]}, "resources may only"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_filters(bad)


def test_settings_update_in_place_or_insert_at_the_usual_position():
    entries = with_setting(default_filters(), "video_scenes_v1", threshold=0.4)
    entries = with_setting(entries, "text_c4_lines_v2")
    entries = with_setting(entries, "text_gopher_quality_v1", min_words=10)
    names = [e.stage for e in entries]
    assert names.index("text_c4_lines_v2") == names.index("text_gopher_repetition_v1") + 1
    assert names[-1] == "video_scenes_v1" and entries[-1].params == {"threshold": 0.4}
    assert entries[1].params == {"languages": ["en"], "min_words": 10}
    entries = apply_overrides(entries, ["video_scenes_v1.max_clip_s=10", "text_lang_id_v1.languages=[en, fr]"])
    assert entries[-1].params == {"threshold": 0.4, "max_clip_s": 10}
    assert entries[0].params == {"languages": ["en", "fr"]}
    with pytest.raises(ConfigError, match="not in the filter list"):
        with_resources(entries, "image_clip_score_v1", num_gpus=1)


def test_specs_carry_resource_overrides():
    entries = [FilterEntry("image_checks_v1", {"min_side": 10}, {"batch_size": 7, "num_cpus": 2})]
    (spec,) = build_specs(entries)
    assert spec.effective_resources.batch_size == 7 and spec.effective_resources.num_cpus == 2
    assert spec.describe() == {
        "stage": "image_checks_v1",
        "min_side": 10,
        "resources": {"num_cpus": 2, "num_gpus": 0.0, "concurrency": None, "batch_size": 7},
    }
    with pytest.raises(ConfigError, match="reuse_scores"):
        build_specs([FilterEntry("image_clip_score_v1", {"reuse_scores": True})])


def test_the_documented_example_config_is_valid():
    from pathlib import Path

    from fusionforge.pipelines.filter_config import load_filters

    example = Path(__file__).resolve().parents[2] / "docs" / "filters-example.yaml"
    specs = build_specs(load_filters(str(example)))
    assert [s.name for s in specs][:2] == ["text_lang_id_v1", "text_gopher_quality_v1"]
    assert specs[-1].name == "video_frames_v1"
