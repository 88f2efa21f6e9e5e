"""``X-Robots-Tag`` values as sites write them: which ones opt an image out for fusionforge."""

from __future__ import annotations

import pytest

from fusionforge.pipelines.fetch.robots import opt_out


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["noai"], "noai"),
        (["NoImageAI"], "noimageai"),
        (["none"], "none"),
        (["noindex, nofollow"], "noindex"),
        (["noimageindex"], "noimageindex"),
        (["nofollow", "noai"], "noai"),  # a second header line
        (["googlebot: noai, noimageai"], None),  # addressed to another crawler for the rest of the line
        (["googlebot: noindex", "noai"], "noai"),  # the scope ends with its header line
        (["fusionforge: noimageai"], "noimageai"),
        (["FusionForge: noai"], "noai"),
        (["*: noai"], "noai"),
        (["unavailable_after: 25 Jun 2010 15:00:00 PST"], None),  # a directive with a value, not a crawler
        (["max-image-preview: large, noai"], "noai"),
        (["nofollow, nosnippet"], None),
        ([], None),
    ],
)
def test_opt_out_directives_for_fusionforge(values, expected):
    assert opt_out(values, "fusionforge") == expected
