"""The outcome of one verification and its four statuses."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PASS, FAIL, TIMEOUT, ERROR = "pass", "fail", "verifier_timeout", "verifier_error"


@dataclass(frozen=True)
class Verdict:
    """``status`` (pass | fail | verifier_timeout | verifier_error), the answer found, and why;
    ``sandbox``: the isolation the code sandbox really got (a ``SandboxMode`` key), when the verifier ran code."""

    status: str
    extracted: str | None = None
    detail: str = ""
    sandbox: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(extracted: Any, ok: bool, why_not: str = "does not match the answer") -> Verdict:
    """``pass`` when ``ok``, else ``fail`` with ``why_not``."""
    text = None if extracted is None else str(extracted)
    return Verdict(PASS, text) if ok else Verdict(FAIL, text, why_not)


def no_answer(what: str = "no final answer found") -> Verdict:
    return Verdict(FAIL, None, what)
