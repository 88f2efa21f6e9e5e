"""Verifiers on real answer forms: LaTeX, units, choices in prose, boxes in two conventions, JSON, code."""

import pytest

from fusionforge.rft import extract
from fusionforge.rft.verifiers import run_verifier
from fusionforge.rft.verify_bbox import iou, to_norm1000

CASES = [
    # math: LaTeX fractions, equivalent forms, units, decoys inside <think>
    ("math", r"So the probability is $\boxed{\frac{1}{2}}$.", "0.5", {}, "pass"),
    ("math", r"Answer: \dfrac{3}{4}", r"\frac{3}{4}", {}, "pass"),
    ("math", r"We get \boxed{\frac12}", "1/2", {}, "pass"),
    ("math", r"\boxed{\frac{1}{\sqrt{2}}}", r"\frac{\sqrt{2}}{2}", {}, "pass"),
    ("math", r"Expanding, \boxed{(x+1)^2}", "x^2+2x+1", {}, "pass"),
    ("math", r"The length is \boxed{12 \text{ cm}}", "12", {}, "pass"),
    ("math", r"\boxed{0.333}", r"\frac{1}{3}", {}, "fail"),
    ("math", r"<think>maybe \boxed{5}</think> The answer is \boxed{4}", "4", {}, "pass"),
    ("math", r"<think>maybe \boxed{4}</think> The answer is \boxed{5}", "4", {}, "fail"),
    ("math", r"<think>I believe it is \boxed{4} but I ran out of", "4", {}, "fail"),
    ("math", r"so $x = \frac{3}{4}$", "0.75", {}, "pass"),
    ("math", "I have no idea.", "4", {}, "fail"),
    # numeric: separators, currency, units, percent, tolerance
    ("numeric", "The total comes to $1,234.50.", 1234.5, {}, "pass"),
    ("numeric", r"\boxed{50\%}", 0.5, {}, "pass"),
    ("numeric", "Answer: 0.25", "25%", {}, "pass"),
    ("numeric", r"\boxed{3.14}", "3.14159", {}, "fail"),
    ("numeric", r"\boxed{3.14}", "3.14159", {"rel_tol": 0.01}, "pass"),
    ("numeric", "It weighs about 12 kg", 12, {}, "pass"),
    ("numeric", "Answer: −3", -3, {}, "pass"),
    ("numeric", "no number here", 3, {}, "fail"),
    # exact: normalisation, aliases
    ("exact", "The capital is Paris.\nAnswer: paris", "Paris", {}, "pass"),
    ("exact", "the Eiffel Tower", "Eiffel Tower", {}, "pass"),
    ("exact", "<answer> New  York </answer>", ["NYC", "New York"], {}, "pass"),
    ("exact", "Answer: paris", "Paris", {"case_sensitive": True}, "fail"),
    ("exact", "Answer: London", "Paris", {}, "fail"),
    # choice: letters in prose, "A" as an article never counts
    ("choice", "A careful reading shows the answer is (C).", "C", {}, "pass"),
    ("choice", "A. is wrong because...\nB is too.\nThe correct option is D", "D", {}, "pass"),
    ("choice", r"\boxed{B}", "(B)", {}, "pass"),
    ("choice", "Looking at the figure...\n(B)", 1, {}, "pass"),
    ("choice", "A cat is on the mat.", "A", {}, "fail"),
    ("choice", "Answer: J", "J", {}, "pass"),
    ("choice", "The answer is (C).", "D", {}, "fail"),
    # count: digits and words
    ("count", "I count three dogs.", 3, {}, "pass"),
    ("count", "<answer>7</answer>", "7", {}, "pass"),
    ("count", "There are 7.5 apples", 7, {}, "fail"),
    ("count", "Answer: 12", 11, {}, "fail"),
    # bbox: pixel and 0-1000 conventions, several boxes, malformed boxes
    ("bbox", "<answer>[100, 200, 300, 400]</answer>", [100, 200, 300, 400], {}, "pass"),
    ("bbox", "<answer>[110, 210, 310, 410]</answer>", [100, 200, 300, 400], {}, "pass"),
    ("bbox", "<answer>[200, 300, 400, 500]</answer>", [100, 200, 300, 400], {}, "fail"),
    (
        "bbox",
        '{"bbox_2d": [50, 100, 150, 200]}',
        {"box": [100, 200, 300, 400], "image_size": [2000, 2000]},
        {"response_convention": "norm1000"},
        "pass",
    ),
    (
        "bbox",
        "[100, 200, 300, 400]",
        [50, 100, 150, 200],
        {"answer_convention": "norm1000", "response_convention": "pixel", "image_size": [2000, 2000]},
        "pass",
    ),
    (
        "bbox",
        "[100, 200, 300, 400]",
        [100, 200, 300, 400],
        {"response_convention": "pixel", "image_size": [1000, 1000], "response_image_size": [500, 500]},
        "fail",
    ),
    (
        "bbox",
        "[50, 100, 150, 200]",
        [100, 200, 300, 400],
        {"image_size": [1000, 1000], "response_image_size": [500, 500]},
        "pass",
    ),
    ("bbox", "(100, 200), (300, 400)", [100, 200, 300, 400], {}, "pass"),
    ("bbox", "[300, 400, 100, 200]", [100, 200, 300, 400], {}, "fail"),  # inverted
    ("bbox", "[100, 200, 100, 400]", [100, 200, 300, 400], {}, "fail"),  # degenerate
    ("bbox", "[10, 10, 20, 20] and [100, 200, 300, 400]", [[100, 200, 300, 400], [10, 10, 20, 20]], {}, "pass"),
    ("bbox", "[100, 200, 300, 400]", [[100, 200, 300, 400], [10, 10, 20, 20]], {}, "fail"),
    ("bbox", "[0, 0, 1200, 900]", [0, 0, 1000, 900], {"answer_convention": "norm1000"}, "fail"),  # off-grid
    ("bbox", "The cat is on the left.", [100, 200, 300, 400], {}, "fail"),
    # json: fences, prose around it, malformed, schema, subset
    ("json", 'Here:\n```json\n{"name": "Ada", "age": 36}\n```', {"age": 36, "name": "Ada"}, {}, "pass"),
    ("json", 'Sure! {"name": "Ada", "age": 36} Hope it helps.', {"age": 36, "name": "Ada"}, {}, "pass"),
    ("json", '```json\n{"name": "Ada", "age": 36,}\n```', {"age": 36, "name": "Ada"}, {}, "fail"),
    ("json", '{"name": "Ada", "age": 36, "city": "London"}', {"name": "Ada"}, {"match": "subset"}, "pass"),
    ("json", '{"name": "Ada", "age": 36, "city": "London"}', {"name": "Ada"}, {}, "fail"),
    (
        "json",
        '{"age": "36"}',
        None,
        {"schema": {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}},
        "fail",
    ),
    ("json", '{"age": 36}', None, {"schema": {"type": "object", "required": ["age"]}}, "pass"),
]


@pytest.mark.parametrize(
    ("task", "response", "answer", "options", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_verifier_on_real_answer_forms(task, response, answer, options, expected):
    verdict = run_verifier(task, response, answer, options)
    assert verdict.status == expected, verdict


def test_failures_say_why():
    assert "no choice letter" in run_verifier("choice", "A cat.", "A").detail
    assert "malformed JSON" in run_verifier("json", '{"a": 1,,}', {"a": 1}).detail
    assert "IoU" in run_verifier("bbox", "[200, 300, 400, 500]", [100, 200, 300, 400]).detail
    assert run_verifier("numeric", r"\boxed{3.14}", 3.2).extracted == "3.14"


@pytest.mark.parametrize(
    ("task", "answer"),
    [("math", r"\frac{"), ("numeric", "many"), ("choice", "Z"), ("bbox", [3, 3, 1, 1]), ("count", "lots")],
)
def test_a_broken_ground_truth_raises_rather_than_failing_the_sample(task, answer):
    with pytest.raises(ValueError):
        run_verifier(task, r"\boxed{3}", answer)


def test_unknown_task_raises():
    with pytest.raises(ValueError, match="unknown verifier"):
        run_verifier("poetry", "x", "y")


def test_extraction_priority_and_forms():
    assert extract.final_answer(r"<answer>\boxed{7}</answer> \boxed{8}").value == "7"
    assert extract.final_answer(r"first \boxed{1} then \boxed{\frac{2}{3}}").value == r"\frac{2}{3}"
    assert extract.final_answer("The final answer is $42$.").value == "42"
    assert extract.final_answer("x is 3 and y is 1,234").value == "1,234"
    assert extract.final_answer("x is 3 and y is 4", allow_last_number=False) is None
    assert extract.last_boxed(r"\boxed 5 apples") == "5"
    assert extract.parse_number(r"\frac{3}{4}").value == 0.75
    assert extract.parse_number("50%").percent
    assert extract.parse_count("twelve") == 12


def test_iou_and_conventions():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0
    assert to_norm1000([100, 50, 200, 100], "pixel", [400, 200]) == [250, 250, 500, 500]
    with pytest.raises(ValueError, match="image_size"):
        to_norm1000([1, 1, 2, 2], "pixel", None)
