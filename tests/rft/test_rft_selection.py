"""Acceptance: exact and near-duplicate passing responses are dropped per prompt, then the policy picks."""

import pytest

from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.rft.selection import select

BASE = (
    "First we add the two numbers of apples that Tom and Ann have together, which gives the total count of "
    "apples in the basket, then we subtract the {} that were eaten at lunch, and what remains is the answer "
    "we were asked to find in this small word problem about fruit. So the answer is 7."
)


def test_exact_duplicates_ignore_case_and_whitespace():
    fates = select(["Answer: 7", "answer:   7", "The answer is 7."], policy="all")
    assert fates == ["accepted", "duplicate_exact", "accepted"]


def test_near_duplicates_are_dropped_distinct_answers_kept():
    texts = [BASE.format("three"), BASE.format("two"), "Short: 7", BASE.format("three").upper()]
    assert select(texts, policy="all") == ["accepted", "duplicate_near", "accepted", "duplicate_exact"]
    assert select(texts, policy="all", near_threshold=0.99) == ["accepted", "accepted", "accepted", "duplicate_exact"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("first", ["accepted", "not_selected", "not_selected"]),
        ("shortest", ["not_selected", "not_selected", "accepted"]),
        ("all", ["accepted", "accepted", "accepted"]),
    ],
)
def test_policies(policy, expected):
    texts = ["A long worked answer that ends in 7", "Another route, also 7 in the end", "7"]
    assert select(texts, policy=policy) == expected


def test_cap_per_prompt_and_ties():
    assert select(["a 1", "b 2", "c 3"], policy="all", max_per_prompt=2) == ["accepted", "accepted", "not_selected"]
    assert select(["x 1", "y 2"], policy="shortest") == ["accepted", "not_selected"]  # a tie goes to the earliest
    assert select([], policy="first") == []
    with pytest.raises(ConfigError):
        select(["x"], policy="best")
