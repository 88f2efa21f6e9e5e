"""Verifiers: does a response's final answer match the ground truth? One function per task.

Every verifier takes ``(response, answer, options)`` and returns a ``Verdict``: ``pass`` or
``fail`` (with what was extracted and why), or raises; the pool turns an exception into
``verifier_error`` and a hang into ``verifier_timeout``, so a broken verifier is never a silent
rejection. Verifiers run inside the killable worker processes of ``verifier_pool``; nothing here
guards against hangs itself (math-verify's own signal timeouts are switched off on purpose).

Tasks and their ground truth (``answer``) and ``options`` (the prompt's ``verify`` field):

- ``math``: a LaTeX or plain expression; equivalence by math-verify (sympy). ``float_rounding``.
- ``numeric``: a number (or a string holding one); ``rel_tol`` (default 1e-6), ``abs_tol`` (1e-9).
  Units and thousands separators are ignored; ``50%`` equals ``0.5`` when only one side has ``%``.
- ``exact``: a string or a list of accepted strings; Unicode NFKC, case-folded (``case_sensitive``),
  whitespace collapsed, surrounding quotes/punctuation and a leading article removed.
- ``choice``: a letter A-J (or its 0-based index); ``letters`` (default ``ABCDEFGHIJ``).
- ``count``: an integer; digits or number words.
- ``bbox``: see ``verify_bbox``; ``json``: see ``verify_json``; ``code``: see ``verify_code``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from fusionforge.rft import extract
from fusionforge.rft.verdict import FAIL, PASS, Verdict, no_answer, passed
from fusionforge.rft.verify_bbox import verify_bbox
from fusionforge.rft.verify_code import verify_code


def verify_math(response: str, answer: Any, options: Mapping[str, Any]) -> Verdict:
    """Symbolic equivalence of the final answer and ``answer`` through math-verify."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    gold = parse(_boxed(str(answer)), extraction_config=configs, parsing_timeout=None)
    if all(isinstance(g, str) for g in gold):  # nothing parsed, or only the raw string came back
        raise ValueError(f"the ground-truth answer {answer!r} cannot be parsed as maths")
    found = extract.final_answer(response, allow_last_number=False)
    if found is not None:
        pred = parse(_boxed(found.value), extraction_config=configs, parsing_timeout=None)
        shown = found.value
    else:  # no anchored answer: math-verify's own search for the last expression (not just the last digit)
        pred = parse(extract.strip_reasoning(response), extraction_config=configs, parsing_timeout=None)
        shown = pred[-1] if pred else None
    if not pred:
        return Verdict(FAIL, shown, "no answer that parses as maths")
    ok = verify(gold, pred, float_rounding=int(options.get("float_rounding", 6)), timeout_seconds=None)
    return passed(shown, ok)


def _boxed(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}`` (which latex2sympy needs), wrapped in ``\\boxed{}`` for math-verify."""
    text = re.sub(r"\\([dt]?frac)\s*(\d)\s*(\d)", r"\\\1{\2}{\3}", text.strip().strip("$"))
    return "\\boxed{" + text + "}"


def verify_numeric(response: str, answer: Any, options: Mapping[str, Any]) -> Verdict:
    """|pred - gold| <= max(abs_tol, rel_tol * |gold|)."""
    gold = answer if isinstance(answer, (int, float)) else extract.parse_number(str(answer))
    if gold is None:
        raise ValueError(f"the ground-truth answer {answer!r} is not a number")
    gold_value, gold_percent = (float(gold), False) if isinstance(gold, (int, float)) else (gold.value, gold.percent)
    found = extract.final_answer(response)
    pred = extract.parse_number(found.value) if found else None
    if pred is None:
        return no_answer("no number in the response") if found is None else Verdict(FAIL, found.value, "not a number")
    rel_tol, abs_tol = float(options.get("rel_tol", 1e-6)), float(options.get("abs_tol", 1e-9))
    candidates = [pred.value]
    if pred.percent != gold_percent:
        candidates.append(pred.value / 100 if pred.percent else pred.value * 100)
    ok = any(math.isclose(c, gold_value, rel_tol=rel_tol, abs_tol=abs_tol) for c in candidates)
    return passed(found.value, ok, f"{pred.value:g} != {gold_value:g} (rel_tol {rel_tol:g}, abs_tol {abs_tol:g})")


def normalize_text(text: str, case_sensitive: bool = False) -> str:
    """NFKC, case-folded, ``\\text{}`` unwrapped, whitespace collapsed, edge punctuation and a leading article gone."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text)
    text = " ".join(text.split()).strip(" \"'`“”‘’.,;:!?()[]{}$*")
    if not case_sensitive:
        text = text.casefold()
    return re.sub(r"^(?:the|a|an)\s+", "", text, flags=re.IGNORECASE)


def verify_exact(response: str, answer: Any, options: Mapping[str, Any]) -> Verdict:
    """Equality after ``normalize_text``; with no anchored answer, the whole (short) response is the answer."""
    golds = answer if isinstance(answer, list) else [answer]
    case_sensitive = bool(options.get("case_sensitive", False))
    found = extract.final_answer(response, allow_last_number=False)
    value = found.value if found else extract.strip_reasoning(response).strip()
    if not value:
        return no_answer()
    pred = normalize_text(value, case_sensitive)
    ok = any(pred == normalize_text(str(g), case_sensitive) for g in golds)
    return passed(value, ok)


def verify_choice(response: str, answer: Any, options: Mapping[str, Any]) -> Verdict:
    """The letter the response commits to equals the answer's letter."""
    letters = str(options.get("letters", "ABCDEFGHIJ"))
    if isinstance(answer, int):
        gold = letters[answer]
    else:
        match = re.fullmatch(r"\W*([A-Za-z])\W*", str(answer).strip())
        if not match or match.group(1).upper() not in letters:
            raise ValueError(f"the ground-truth choice {answer!r} is not one of {letters}")
        gold = match.group(1).upper()
    pred = extract.extract_choice(response, letters)
    if pred is None:
        return no_answer("no choice letter found")
    return passed(pred, pred == gold, f"chose {pred}, the answer is {gold}")


def verify_count(response: str, answer: Any, options: Mapping[str, Any]) -> Verdict:
    """The integer the response gives equals the answer."""
    gold = answer if isinstance(answer, int) else extract.parse_count(str(answer))
    if gold is None:
        raise ValueError(f"the ground-truth count {answer!r} is not an integer")
    found = extract.final_answer(response)
    pred = extract.parse_count(found.value) if found else extract.last_count_word(extract.strip_reasoning(response))
    if pred is None:
        return no_answer("no integer count found") if found is None else Verdict(FAIL, found.value, "not an integer")
    return passed(pred, pred == gold, f"{pred} != {gold}")


def verify_json(response: str, answer: Any, options: Mapping[str, Any]) -> Verdict:
    """The response's JSON value equals ``answer`` (``match: exact``) or contains its fields (``subset``).

    ``schema`` (a JSON Schema) is checked first when given; ``answer`` may then be null (schema only).
    """
    value, error = extract.extract_json(response)
    if error is not None:
        return Verdict(FAIL, None, error)
    shown = _short(value)
    schema = options.get("schema")
    if schema is not None:
        import jsonschema

        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            return Verdict(FAIL, shown, f"schema: {exc.message}")
    if answer is None:
        return Verdict(PASS, shown)
    mode = options.get("match", "exact")
    if mode == "subset":
        if not isinstance(value, dict) or not isinstance(answer, dict):
            return Verdict(FAIL, shown, "subset matching needs JSON objects")
        missing = [k for k, v in answer.items() if k not in value or value[k] != v]
        return passed(shown, not missing, f"fields differ: {missing}")
    return passed(shown, value == answer)


def _short(value: Any, limit: int = 200) -> str:
    import json

    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


VERIFIERS: dict[str, Callable[[str, Any, Mapping[str, Any]], Verdict]] = {
    "math": verify_math,
    "numeric": verify_numeric,
    "exact": verify_exact,
    "choice": verify_choice,
    "count": verify_count,
    "bbox": verify_bbox,
    "json": verify_json,
    "code": verify_code,
}
TASKS = tuple(VERIFIERS)


def run_verifier(task: str, response: str, answer: Any, options: Mapping[str, Any] | None = None) -> Verdict:
    """Run the verifier of ``task`` in this process (the pool calls this inside its workers)."""
    if task not in VERIFIERS:
        raise ValueError(f"unknown verifier {task!r}; known: {', '.join(TASKS)}")
    return VERIFIERS[task](response, answer, options or {})
