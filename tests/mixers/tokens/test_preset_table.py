"""The documented preset defaults: docs/formats.md equals the code, and each family reads exactly what it lists."""

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.mixers.tokens.preset_table import preset_rows, presets_markdown
from fusionforge.mixers.tokens.vision import BUILTIN, PRESETS, Wrapper

DOCS = Path(__file__).resolve().parents[3] / "docs" / "formats.md"
IMAGES = [(1, 1), (20, 500), (640, 480), (1000, 500), (4000, 3000), (12000, 100), (30000, 300)]
VIDEOS = [(64, 48, 3), (640, 480, 9), (1920, 1080, 1000)]


def _documented_block() -> str:
    text = DOCS.read_text()
    start = text.index("\n", text.index("<!-- presets:begin")) + 1
    return text[start : text.index("<!-- presets:end -->")]


def test_docs_table_is_generated_from_the_presets():
    assert _documented_block().rstrip("\n") == presets_markdown().rstrip("\n"), (
        "docs/formats.md is stale: paste `python -m fusionforge.mixers.tokens.preset_table` between the presets markers"
    )
    kimi = preset_rows()["kimi-k25"]
    assert (kimi["max_patches"], kimi["video_max_patches"], kimi["max_patches_per_side"]) == (16384, 4096, 512)
    assert "| `in_token_limit` | `4096` |" in presets_markdown()


def _outcomes(preset):
    out = []
    for width, height in IMAGES:
        try:
            out.append(preset.image(width, height))
        except ValueError as exc:
            out.append(str(exc))
    for width, height, frames in VIDEOS:
        try:
            out.append(preset.video(width, height, frames))
        except ValueError as exc:
            out.append(str(exc))
    return out


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, Wrapper):
        return Wrapper("<a>", "<b>", 7, 7)
    if isinstance(value, str):
        return "pad" if value == "crop" else "crop"
    return value * 2


@pytest.mark.parametrize("name", PRESETS)
def test_each_family_reads_exactly_the_parameters_it_documents(name):
    preset = BUILTIN[name]
    listed = set(preset.describe())
    # max_video_tokens only acts with the per-video cap on, so every change is also compared under the cap
    bases = [preset] + ([preset.with_overrides(cap_pixels_per_frame=True)] if "cap_pixels_per_frame" in listed else [])
    for param in {f.name for f in dataclasses.fields(preset)} - {"name", "family"}:
        differs = [
            _outcomes(base) != _outcomes(base.with_overrides(**{param: _changed(getattr(base, param))}))
            for base in bases
        ]
        if param in listed:
            assert any(differs), f"{name} lists {param} but ignores it"
        else:
            assert not any(differs), f"{name} reads {param}, which its table leaves out"


def test_cli_prints_the_presets():
    result = CliRunner().invoke(cli, ["tokens", "--presets", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == preset_rows()
    table = CliRunner().invoke(cli, ["tokens", "--presets"], terminal_width=200)
    assert table.exit_code == 0 and "max_patches_per_side" in table.output and "<|media_begin|>" in table.output
    missing = CliRunner().invoke(cli, ["tokens"])
    assert missing.exit_code != 0 and "--presets" in missing.output


def test_command_line_overrides_are_typed_like_the_preset_parameters():
    from fusionforge.mixers.tokens.vision import parse_override
    from fusionforge.pipelines.core.errors import ConfigError

    assert parse_override("cap_pixels_per_frame=false") == ("cap_pixels_per_frame", False)
    assert parse_override("cap_pixels_per_frame=True") == ("cap_pixels_per_frame", True)
    assert parse_override("max_patches=4096") == ("max_patches", 4096)
    assert parse_override("fit=pad") == ("fit", "pad")
    for bad, message in (
        ("cap_pixels_per_frame=no", "true or false"),
        ("max_patches=4k", "whole number"),
        ("max_patchez=1", "max_patches"),
        ("max_patches", "KEY=VALUE"),
        ("family=x", "KEY"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_override(bad)


def test_a_false_flag_on_the_command_line_means_false(tmp_path):
    from click.testing import CliRunner

    from fusionforge.cli.main import cli

    def video_tokens(*settings: str) -> int:
        args = ["tokens", "--preset", "qwen2-vl", "1920x1080x768", "--json"]
        for setting in settings:
            args += ["--set", setting]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["items"][0]["tokens"]

    assert video_tokens("cap_pixels_per_frame=false") == video_tokens()
    assert video_tokens("cap_pixels_per_frame=true") != video_tokens()
    bad = CliRunner().invoke(
        cli, ["pack", str(tmp_path), "-o", str(tmp_path / "out"), "--preset-set", "cap_pixels_per_frame=maybe"]
    )
    assert bad.exit_code == 2 and "true or false" in bad.output
