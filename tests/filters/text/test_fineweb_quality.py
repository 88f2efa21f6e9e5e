import pytest

from fusionforge.filters.text.fineweb import FineWebQuality, fineweb_scores
from fusionforge.pipelines.core import schema as S

LONG = [f"This line number {i} is long enough and it ends with a full stop." for i in range(10)]


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (LONG, None),
        ([line.rstrip(".") for line in LONG], "text_fineweb_quality_v1:few_punctuated_lines"),
        (
            LONG[:3] + ["Short one.", "Also short.", "Tiny.", "Brief.", "Small.", "Mini.", "Wee."],
            "text_fineweb_quality_v1:short_lines",
        ),
        (LONG[:8] + LONG[:1], "text_fineweb_quality_v1:duplicate_lines"),
        ([f"Internationalisation considerations{i}." for i in range(12)], "text_fineweb_quality_v1:list_like"),
    ],
)
def test_each_check_drops_with_its_reason(make_batch, make_record, lines, reason):
    out = FineWebQuality()(make_batch([make_record("t/0", "\n".join(lines))]))
    assert out.column(S.DROP_REASON).to_pylist() == [reason]


def test_ratios_follow_fineweb_definitions():
    import pyarrow as pa

    text = "A full line that ends well.\n\nno stop here\nA repeated closing line.\nA repeated closing line."
    scores = fineweb_scores(pa.array([text], pa.large_string()))
    assert scores["line_punct_ratio"][0] == pytest.approx(3 / 5)  # blank lines count, as in FineWeb
    assert scores["short_line_ratio"][0] == pytest.approx(5 / 5)  # all five lines have <= 30 characters
    assert scores["char_dup_ratio"][0] == pytest.approx(len("A repeated closing line.") / (len(text) - 4))
    assert scores["list_ratio"][0] == pytest.approx(4 / 17)  # 4 newlines, 6 + 3 + 4 + 4 words


def test_thresholds_can_be_switched_off(make_batch, make_record):
    text = "\n".join(line.rstrip(".") for line in LONG)
    out = FineWebQuality(line_punct_thr=None)(make_batch([make_record("t/0", text)]))
    assert out.column(S.DROP_REASON).to_pylist() == [None]
