"""Every row of docs/verifiers.md's tables, run through the verifiers: the documented forms are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fusionforge.rft import extract
from fusionforge.rft.verifiers import run_verifier

DOC = Path(__file__).resolve().parents[2] / "docs" / "verifiers.md"
ROW = re.compile(r"^\| (\w+) \| `(.+)` \| (\S+) \| (\w+) \| (.+?) \|$")


def documented_forms() -> list[tuple[str, str, str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index("<!-- forms:begin -->") : text.index("<!-- forms:end -->")]
    rows = []
    for line in block.splitlines():
        match = ROW.match(line)
        if match:
            verifier, response, gold, verdict, rule = match.groups()
            response = re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), response)
            rows.append((verifier, response.replace("\\n(", "\n("), gold, verdict, rule))
    return rows


FORMS = documented_forms()


def test_the_table_is_read_whole():
    table_rows = [
        line for line in DOC.read_text(encoding="utf-8").splitlines() if re.match(r"^\| (choice|numeric|count) ", line)
    ]
    assert len(FORMS) == len(table_rows) >= 40


@pytest.mark.parametrize(("verifier", "response", "gold", "verdict", "rule"), FORMS, ids=[f[1][:40] for f in FORMS])
def test_documented_form(verifier, response, gold, verdict, rule):
    result = run_verifier(verifier, response, float(gold) if verifier == "numeric" else gold)
    if verdict == "no_answer":
        assert (result.status, result.extracted) == ("fail", None), result
    else:
        assert result.status == verdict, result
    if rule.startswith("refused") or rule == "number word":
        return
    if verifier == "choice":
        assert extract.choice_with_method(response)[1] == rule
    else:
        assert extract.final_answer(response).method == rule
