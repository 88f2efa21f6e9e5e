import json

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.shard import ShardConfig, run_shard

DOCS = {
    "en": "The children walk slowly to the old school and the teacher opens the door with a smile. " * 4,
    "de": "Die Kinder gehen langsam zur alten Schule und der Lehrer öffnet die Tür mit einem Lächeln. " * 4,
    "fr": "Les enfants marchent lentement vers la vieille école et le maître ouvre la porte en souriant. " * 4,
}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    raw = folder / "docs.jsonl"
    raw.write_text(
        "\n".join(json.dumps({"id": f"{lang}{i}", "text": text}) for i in range(3) for lang, text in DOCS.items())
        + "\n"
    )
    run_shard(ShardConfig(inputs=(f"docs={raw}",), output=str(folder / "shards"), run=RunSettings(executor="local")))
    return folder / "shards"


def test_filter_with_a_config_file_flags_and_overrides(shards, tmp_path):
    config = tmp_path / "filters.yaml"
    config.write_text("filters:\n  - text_lang_id_v1\n  - stage: text_gopher_quality_v1\n    min_words: 500\n")
    args = [
        "filter",
        str(shards),
        "-o",
        str(tmp_path / "out"),
        "--config",
        str(config),
        "--languages",
        "en,de",
        "--set",
        "text_gopher_quality_v1.min_words=20",
        "--set",
        "text_gopher_quality_v1.stop_words=[the, und]",
        "--executor",
        "local",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["inputs"] == 9 and report["kept"] == 6
    assert report["reasons"] == {"text_lang_id_v1:other_language": 3}
    assert report["reasons_by_source"] == {"docs": {"text_lang_id_v1:other_language": 3}}
    stages = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())["stages"]
    assert stages[0] == {"stage": "text_lang_id_v1", "languages": ["en", "de"]}
    assert stages[1]["min_words"] == 20 and stages[1]["stop_words"] == ["the", "und"]
    kept = pq.read_table(tmp_path / "out" / "manifest.parquet").column("text_lang_id_v1__lang").to_pylist()
    assert sorted(set(kept)) == ["de", "en"]


def test_flags_alone_extend_the_default_list_in_its_usual_order(shards, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "filter",
            str(shards),
            "-o",
            str(tmp_path / "out"),
            "--min-words",
            "5",
            "--split-scenes",
            "--executor",
            "local",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    names = [f["stage"] for f in json.loads(result.output)["filters"]]
    assert names == [
        "text_lang_id_v1",
        "text_gopher_quality_v1",
        "text_gopher_repetition_v1",
        "text_fineweb_quality_v1",
        "image_checks_v1",
        "video_probe_v1",
        "video_scenes_v1",
    ]


def test_config_errors_are_clean_messages(shards, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("filters:\n  - stage: image_clip_score_v1\n    model: ViT-B-32\n")
    result = CliRunner().invoke(cli, ["filter", str(shards), "-o", str(tmp_path / "o"), "--config", str(config)])
    assert result.exit_code == 2 and "needs weights" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["filter", str(shards), "-o", str(tmp_path / "o"), "--set", "oops"])
    assert result.exit_code == 2 and "STAGE.PARAM=VALUE" in result.output


def test_train_fasttext_command(tmp_path):
    for label, word in (("good", "careful measured thoughtful"), ("bad", "click buy cheap now")):
        rows = [{"text": f"{word} {i} {word}"} for i in range(60)]
        (tmp_path / f"{label}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    model = tmp_path / "q.bin"
    result = CliRunner().invoke(
        cli,
        [
            "filters",
            "train-fasttext",
            f"good={tmp_path / 'good.jsonl'}",
            f"bad={tmp_path / 'bad.jsonl'}",
            "-o",
            str(model),
            "--bucket",
            "10000",
            "--epoch",
            "20",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["labels"] == {"bad": 60, "good": 60} and model.stat().st_size == report["bytes"]
    missing = CliRunner().invoke(cli, ["filters", "train-fasttext", str(tmp_path / "nope.jsonl"), "-o", str(model)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


@pytest.fixture(scope="module")
def photo_shards(tmp_path_factory):
    """Eight captioned pictures, sharded."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    raw = folder / "raw"
    raw.mkdir()
    for i in range(8):
        image = Image.new("RGB", (96, 80), (30 * i, 200 - 20 * i, 90))
        image.paste((250, 250, 250), (8 * i, 10, 8 * i + 20, 40))
        image.save(raw / f"img_{i}.png")
        (raw / f"img_{i}.txt").write_text(f"a white square on a coloured background, number {i}")
    run_shard(ShardConfig(inputs=(f"photos={raw}",), output=str(folder / "shards"), run=RunSettings(executor="local")))
    return folder / "shards"


@pytest.mark.parametrize(
    ("clip_on", "stages"),
    [
        (None, ["image_clip_score_v1"]),
        ("video", ["video_clip_score_v1"]),
        ("both", ["image_clip_score_v1", "video_clip_score_v1"]),
    ],
)
def test_clip_flags_reach_the_clip_stages(photo_shards, tiny_clip, tmp_path, clip_on, stages):
    args = [
        "filter",
        str(photo_shards),
        "-o",
        str(tmp_path / "out"),
        "--clip-model",
        tiny_clip["config"],
        "--clip-pretrained",
        tiny_clip["st"],
        "--clip-top-fraction",
        "0.5",
        "--clip-gpus",
        "0.5",
        "--clip-device",
        "cpu",
        "--executor",
        "local",
        "--json",
    ]
    result = CliRunner().invoke(cli, args + (["--clip-on", clip_on] if clip_on else []))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    resolved = {s["stage"]: s for s in yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())["stages"]}
    assert [s for s in resolved if "clip" in s] == stages
    for stage in stages:
        entry = resolved[stage]
        assert (entry["model"], entry["pretrained"], entry["device"]) == (tiny_clip["config"], tiny_clip["st"], "cpu")
        assert entry["top_fraction"] == 0.5 and entry["resources"]["num_gpus"] == 0.5
    scores = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pydict().get("image_clip_score_v1__score")
    if "image_clip_score_v1" in stages:  # 8 pictures scored, the best 4 kept
        assert report["kept"] == 4 and len(scores) == 4 and None not in scores
        assert report["reasons"]["image_clip_score_v1:low_score"] == 4
        assert resolved["image_clip_score_v1"]["resolved_threshold"] == min(scores)
    else:  # only videos are judged: none here, so nothing is dropped and no image score is written
        assert report["kept"] == 8 and scores is None


def test_clip_on_without_clip_flags_is_a_usage_error(photo_shards, tmp_path):
    result = CliRunner().invoke(cli, ["filter", str(photo_shards), "-o", str(tmp_path / "o"), "--clip-on", "video"])
    assert result.exit_code == 2 and "--clip-on only chooses" in result.output
