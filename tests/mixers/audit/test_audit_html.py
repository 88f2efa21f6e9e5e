"""The HTML report: one self-contained file that a headless Chromium renders with its plots."""

import base64
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from audit_outputs import build_chain, build_many_lengths, build_plan, build_untouched_chain
from PIL import Image

from fusionforge.mixers.audit import Target, compare_reports, run_audit
from fusionforge.mixers.audit.html import render_html, write_html
from fusionforge.mixers.audit.plots import REALISED, TARGET
from fusionforge.mixers.audit.presentation import APPROXIMATE, APPROXIMATE_NOTE
from fusionforge.mixers.mixture import parse_mixture

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    chain = build_chain(root)
    packed = build_plan(root / "packed", chain["filter"])
    target = Target(
        parse_mixture({"sources": {"web": {"proportion": 1}, "photos": {"proportion": 1}}}), vision_ratio=0.1
    )
    full = run_audit([str(p) for p in (*chain.values(), packed)], target=target)
    return compare_reports(full, run_audit([str(chain["shard"])]))


def test_the_page_is_one_self_contained_file(report, tmp_path):
    text = write_html(report, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script" not in text and "<link" not in text and "http://" not in text and "https://" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert len(sources) >= 6  # mixture, vision ratio, funnel, cluster sizes, distributions, filter scores
    for source in sources:
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        assert image.format == "PNG" and image.size[0] > 300
    for section in (
        "Mixture: realised vs target",
        "Funnel",
        "Duplicate clusters",
        "Distributions",
        "Packing",
        "Comparison",
        "Top drop and failure reasons",
    ):
        assert section in text
    assert re.search(r'<td class="bad">vision_ratio</td>', text)  # 20.1% realised against 10% is marked red
    assert "Exact: every record" in text


def _close_to(pixels: np.ndarray, hex_color: str, tolerance: int = 12) -> int:
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels.astype(int) - rgb).max(axis=2) <= tolerance).sum())


def _locate(screen: np.ndarray, plot: np.ndarray) -> tuple[int, int] | None:
    """(top, left) of ``plot`` drawn 1:1 in ``screen``: its most varied row found by a byte search, then
    the whole block compared (a PNG without a colour profile is drawn pixel for pixel)."""
    row = int(np.argmax([len(np.unique(line, axis=0)) for line in plot]))
    needle = plot[row].tobytes()
    for y in range(row, screen.shape[0] - plot.shape[0] + row + 1):
        at = screen[y].tobytes().find(needle)
        if at >= 0 and at % 3 == 0:
            top, left = y - row, at // 3
            block = screen[top : top + plot.shape[0], left : left + plot.shape[1]]
            if block.shape == plot.shape and np.abs(block.astype(int) - plot.astype(int)).max() <= 8:
                return top, left
    return None


@pytest.mark.slow
def test_headless_chromium_shows_every_plot_whole(report, tmp_path):
    assert CHROMIUM.exists(), "chromium is missing: run scripts/install-system-deps.sh as root (make test does)"
    page = write_html(report, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,8000",
            f"--screenshot={shot}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (8000, 1200)
    content = np.flatnonzero((pixels.min(axis=2) < 245).any(axis=1))
    assert 2200 < content.max() < 8000 - 200  # longer than one screen, and the page ends inside the shot
    assert (pixels[: content.max()].min(axis=2) < 200).mean() > 0.05  # not a blank page
    assert _close_to(pixels, REALISED) > 3000  # the bars of the mixture and vision-ratio plots
    assert _close_to(pixels, TARGET) > 500  # the target bars
    plots = [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))
        for uri in re.findall(r'src="data:image/png;base64,([^"]*)"', page.read_text(encoding="utf-8"))
    ]
    assert len(plots) == 6  # mixture, vision ratio, funnel, cluster sizes, distributions, filter scores
    places = [_locate(pixels, plot) for plot in plots]
    assert None not in places, [i for i, place in enumerate(places) if place is None]
    tops = [top for top, _left in places]
    assert tops == sorted(tops) and tops[-1] > 2200  # in page order, the funnel and histograms too


def _row(page: str, cell: str, column: int = 0) -> list[str]:
    """The cells (text, tags stripped) of the first table row that has ``cell`` in ``column``."""
    for row in re.findall(r"<tr>(.*?)</tr>", page):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
        if len(cells) > column and cells[column] == cell:
            return cells
    raise AssertionError(f"no row with {cell!r} in column {column}")


def test_a_step_that_removed_nothing_from_a_group_carries_its_records(tmp_path):
    page = render_html(run_audit(build_untouched_chain(tmp_path)))
    assert _row(page, "source/modality") == ["source/modality", "input", "after shard", "after dedupe", "after filter"]
    assert _row(page, "clips/video") == ["clips/video", "2", "2", "2", "1"]
    assert _row(page, "web/text") == ["web/text", "3", "3", "2", "2"]


def test_binned_quantiles_are_marked(tmp_path):
    report = run_audit([str(build_many_lengths(tmp_path / "out"))])
    quantiles = report["distributions"]["shard"]["kept"]["text_tokens/text"]["quantiles"]
    page = render_html(report)
    text_row, width_row = _row(page, "text_tokens/text", 1), _row(page, "image_width", 1)
    assert text_row[1:6] == [
        "text_tokens/text",
        "300",
        *(f"{APPROXIMATE}{quantiles[k]:,.4g}" for k in ("p5", "p50", "p95")),
    ]
    assert width_row[1:6] == ["image_width", "3", "28", "28", "56"] and APPROXIMATE not in "".join(width_row)
    assert "Exact: every record" in page and APPROXIMATE_NOTE in page


def test_exact_quantiles_carry_no_mark(report):
    assert APPROXIMATE not in render_html(report)  # the chain's few values are all kept exactly
