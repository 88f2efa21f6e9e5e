"""The terminal tables: records carried through steps that left a group alone, marked quantiles, red deviations."""

import io
import re

import pytest
from audit_outputs import build_many_lengths, build_untouched_chain, media, record, write_output
from rich.console import Console

from fusionforge.mixers.audit import load_target, run_audit
from fusionforge.mixers.audit.presentation import APPROXIMATE, APPROXIMATE_NOTE
from fusionforge.mixers.audit.terminal import render

RED = re.compile(r"\x1b\[(?:\d+;)*31m")  # SGR foreground red, alone or after bold


def _console() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, color_system="standard", record=True, width=220)


def _text(report: dict, styles: bool = False) -> str:
    console = _console()
    console.print(render(report))
    return console.export_text(styles=styles).replace("┃", "│")  # header rows use heavy bars


def _cells(text: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    line = next(line for line in text.splitlines() if line.startswith(f"│ {first} "))
    return [cell.strip() for cell in line.strip("│").split("│")]


def _row_with(text: str, needle: str) -> list[str]:
    """The cells of the first table row that holds ``needle``."""
    line = next(line for line in text.splitlines() if needle in line and line.startswith("│"))
    return [cell.strip() for cell in line.strip("│").split("│")]


def test_a_step_that_removed_nothing_from_a_group_carries_its_records(tmp_path):
    report = run_audit(build_untouched_chain(tmp_path))
    assert not [r for r in report["funnel"]["clips/video"] if r["step"] == "dedupe"]  # the report lists no row
    text = _text(report)
    assert _cells(text, "source/modality") == ["source/modality", "input", "shard", "dedupe", "filter"]
    assert _cells(text, "clips/video") == ["clips/video", "2", "2", "2", "1"]
    assert _cells(text, "web/text") == ["web/text", "3", "3", "2", "2"]
    assert _cells(text, "all") == ["all", "5", "5", "4", "3"]


@pytest.fixture()
def many_lengths(tmp_path):
    return run_audit([str(build_many_lengths(tmp_path / "out"))])


def test_binned_quantiles_are_marked_and_exact_ones_are_not(many_lengths):
    kept = many_lengths["distributions"]["shard"]["kept"]
    assert kept["text_tokens/text"]["quantiles_exact"] is False and kept["image_width"]["quantiles_exact"] is True
    text = _text(many_lengths)
    binned = kept["text_tokens/text"]["quantiles"]
    assert _row_with(text, "text_tokens/text")[3:6] == [f"{APPROXIMATE}{binned[k]:,.4g}" for k in ("p5", "p50", "p95")]
    assert abs(binned["p50"] - 150) <= 150 * 0.011  # the true median is 150
    assert _row_with(text, "image_width")[3:6] == ["28", "28", "56"]  # widths 28, 56, 28: exact, unmarked
    assert "exact: every record was read" in text and APPROXIMATE_NOTE in " ".join(text.split())
    assert "within ±1.09%" in text.split("distributions")[1]  # the table's footnote


def test_without_binned_quantiles_there_is_no_mark(tmp_path):
    out = write_output(tmp_path / "out", "shard", [record(f"web/w{i}", "web", text="x" * (4 * i)) for i in (1, 2)])
    text = _text(run_audit([str(out)]))
    assert APPROXIMATE not in text and "exact: every record was read" in text


def test_the_failing_sources_and_checks_are_red_in_a_terminal(tmp_path):
    out = write_output(
        tmp_path / "out",
        "shard",
        [  # 10, 30 and 60 tokens: shares 10%, 30%, 60%
            record("web/1", "web", text="a" * 40),
            record("books/1", "books", text="b" * 120),
            record("news/1", "news", text="c" * 240),
        ],
    )
    mix = tmp_path / "mix.yaml"
    mix.write_text("sources: {web: {proportion: 0.2}, books: {proportion: 0.3}, news: {proportion: 0.5}}\n")
    report = run_audit([str(out)], target=load_target(str(mix)))
    assert {r["source"]: r["ok"] for r in report["by_source"]} == {"web": False, "books": True, "news": False}
    styled, plain = _text(report, styles=True), _text(report)
    by_source = styled.split("mixture by source")[1].split("vision-token ratio")[0].splitlines()
    checks = styled.split("DEVIATIONS")[1].splitlines()
    for source, failing in (("web", True), ("books", False), ("news", True)):
        assert bool(RED.search(next(line for line in by_source if source in line))) is failing, source
        assert bool(RED.search(next(line for line in checks if f"share:{source}" in line))) is failing, source
    assert "DEVIATIONS" in plain and not RED.search(plain)  # the colour is styling, not text


def test_vision_tokens_by_preset_show_source_x_modality(tmp_path):
    from fusionforge.mixers.audit import AuditOptions

    out = write_output(
        tmp_path / "out",
        "shard",
        [
            record("legacy/a", "legacy", "image", text="old", items=[media("image", 56, 56, 10)]),
            record("legacy/b", "legacy", "text", text="x" * 20),
            record("photos/c", "photos", "image", items=[media("image", 28, 28, 10)]),
        ],
    )
    report = run_audit([str(out)], AuditOptions(vision_presets=("qwen2-vl",)))
    rows = {
        tuple(_cells(line, "qwen2-vl")[1:3]) for line in _text(report).splitlines() if line.startswith("│ qwen2-vl ")
    }
    assert rows == {
        ("all", "all"),
        ("all", "image"),
        ("all", "text"),
        ("legacy", "all"),
        ("legacy", "image"),
        ("legacy", "text"),
        ("photos", "image"),
    }  # photos' total would repeat its one modality
    assert ("photos", "all") in {(r["source"], r["modality"]) for r in report["vision_by_preset"]}  # JSON has all
