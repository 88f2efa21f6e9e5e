"""``fusionforge audit`` end to end on outputs made by ``fusionforge shard``."""

import json

import jsonschema
import pytest
from click.testing import CliRunner

from fusionforge.cli.main import cli
from fusionforge.mixers.audit.schema import REPORT_SCHEMA


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit_cli")
    web, books = root / "web.jsonl", root / "books.jsonl"
    web.write_text(
        "".join(json.dumps({"id": f"w{i}", "text": "w" * 40, "lang": "en"}) + "\n" for i in range(6)) + '{"broken\n'
    )
    books.write_text("".join(json.dumps({"id": f"b{i}", "text": "b" * 120}) + "\n" for i in range(2)))
    out, other = root / "out", root / "web_only"
    for target, inputs in ((out, [f"web={web}", f"books={books}"]), (other, [f"web={web}"])):
        result = _invoke("shard", *inputs, "-o", target, "--executor", "local")
        assert result.exit_code == 0, result.output
    return {"root": root, "out": out, "other": other}


def test_tables_by_default(outputs):
    result = _invoke("audit", outputs["out"], "--executor", "local")
    assert result.exit_code == 0, result.output
    for title in ("mixture by source", "funnel (all records)", "top drop and failure reasons", "read:malformed_json"):
        assert title in result.stdout
    assert "exact: every record was read" in result.output


def test_json_has_every_figure_in_the_stable_schema(outputs):
    result = _invoke("audit", outputs["out"], "--executor", "local", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    jsonschema.validate(report, REPORT_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert report["totals"]["records"] == 8 and report["totals"]["text_tokens"] == 6 * 10 + 2 * 30
    shares = {r["source"]: r["token_share"] for r in report["by_source"]}
    assert shares == {"web": 0.5, "books": 0.5}
    assert report["funnel"]["all"][0]["remaining"] == 9


def test_html_report_is_written_and_its_path_printed(outputs, tmp_path):
    page = tmp_path / "report.html"
    result = _invoke("audit", outputs["out"], "--executor", "local", "--html", page)
    assert result.exit_code == 0, result.output
    assert page.exists() and "data:image/png;base64," in page.read_text()
    assert f"HTML report: {page}" in result.output.replace("\n", "")


def test_target_deviation_fails_only_when_asked(outputs):
    mix = outputs["root"] / "mix.yaml"
    mix.write_text("sources:\n  web: {proportion: 0.7}\n  books: {proportion: 0.3}\n")
    base = ["audit", outputs["out"], "--executor", "local", "--target", mix]
    assert _invoke(*base).exit_code == 0
    failing = _invoke(*base, "--fail-on-deviation", "--json")
    assert failing.exit_code == 3
    report = json.loads(failing.stdout)
    assert report["target"]["ok"] is False
    assert {c["figure"] for c in report["target"]["checks"] if not c["ok"]} == {"share:web", "share:books"}
    assert "deviation beyond tolerance: share:books, share:web" in failing.output
    assert _invoke(*base, "--fail-on-deviation", "--tolerance", "0.25").exit_code == 0
    assert _invoke(*base, "--fail-on-deviation", "--tolerance", "0.25", "--vision-ratio", "0.1").exit_code == 3


def test_compare_shows_deltas(outputs):
    result = _invoke("audit", outputs["out"], "--compare", outputs["other"], "--executor", "local", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["figure"]: r for r in json.loads(result.stdout)["compare"]["rows"]}
    assert rows["totals.records"] == {
        "figure": "totals.records",
        "this": 8,
        "other": 6,
        "delta": 2,
        "relative": pytest.approx(1 / 3),
    }
    assert rows["source.books.records"]["other"] is None
    tables = _invoke("audit", outputs["out"], "--compare", outputs["other"], "--executor", "local")
    assert "compared with" in tables.stdout and "totals.records" in tables.stdout


def test_sampled_audits_say_so(outputs):
    result = _invoke("audit", outputs["out"], "--executor", "local", "--sample", "0.5", "--json")
    assert json.loads(result.stdout)["exact"] is False
    assert "SAMPLED" in _invoke("audit", outputs["out"], "--executor", "local", "--sample", "0.5").stdout


def test_vision_presets_on_the_command_line(outputs):
    result = _invoke("audit", outputs["out"], "--executor", "local", "--vision-preset", "qwen2-vl")
    assert result.exit_code == 0, result.output
    assert "vision tokens by preset" in result.stdout and "qwen2-vl" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vision-preset", "gpt-9"], "unknown vision preset"),
        (["--sample", "2"], "Invalid value for '--sample'"),
        (["--vision-ratio", "3"], "Invalid value for '--vision-ratio'"),
    ],
)
def test_bad_options_are_clear_errors(outputs, args, message):
    result = _invoke("audit", outputs["out"], "--executor", "local", *args)
    assert result.exit_code == 2 and message in result.output


def test_a_folder_without_parquet_is_a_clear_error(tmp_path):
    result = _invoke("audit", tmp_path, "--executor", "local")
    assert result.exit_code == 2 and "holds no Parquet files" in result.output


def test_the_demo_ends_with_the_audit_and_prints_the_report_path(outputs, tmp_path):
    import io
    import shutil

    from rich.console import Console

    from fusionforge.cli.demo import audit_step
    from fusionforge.pipelines.core.settings import RunSettings

    demo = tmp_path / "demo"
    (demo / "raw").mkdir(parents=True)
    shutil.copytree(outputs["out"], demo / "shards")
    buffer = io.StringIO()
    path = audit_step(demo, Console(file=buffer, width=200), RunSettings(executor="local"))
    assert path == (demo / "audit.html").resolve() and path.exists()
    printed = buffer.getvalue()
    assert f"audit report {path}" in printed and "mixture by source" in printed
    assert "target 10.00%" in printed  # the demo checks the vision share against Kimi K2.5's 10%
