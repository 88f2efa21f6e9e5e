"""Answer extraction: find the final answer in a model response, the way graders of public benchmarks do.

Priority (first that matches wins), applied to the text after the last ``</think>``:

1. the last ``<answer>...</answer>`` (a ``\\boxed{}`` inside it is unwrapped);
2. the last ``\\boxed{...}`` / ``\\fbox{...}`` (braces balanced, so ``\\boxed{\\frac{1}{2}}`` works);
3. the last "Answer: ..." / "The final answer is ..." line;
4. the last number (only where the caller allows it: it is a guess, not an answer).

Reasoning inside ``<think>`` never counts: a decoy ``\\boxed{}`` there is ignored, and an unclosed
``<think>`` means the model never reached an answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
# Answer keywords in the languages models most often answer in; "答案" and friends need no space around them.
ANSWER_WORDS = (
    r"(?:final\s+|correct\s+|right\s+)?answer|antwort|r[ée]ponse|respuesta|resposta|risposta|"
    r"odpowied[źz]|ответ|答案|回答|答え|解答|정답"
)
_ANSWER_LINE = re.compile(
    rf"(?:{ANSWER_WORDS})\s*(?:is|=|ist|est|es|是|为|為|は)?\s*[:：]\s*(.+?)\s*$"
    r"|(?:the\s+)?(?:final\s+)?answer\s+is\s*[:：]?\s*(.+?)\s*$"
    r"|(?:答案|回答|答え)\s*(?:是|为|為|は)\s*(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
NUMBER = r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+"
# In an answer string (not free text, where "in 19 100 people" would merge) digit groups may also be
# separated by a space, a no-break or a thin space: "12 000", "12\u202f000".
ANSWER_NUMBER = r"[-+−]?(?:\d{1,3}(?:[, \u00a0\u2009\u202f]\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+"
_SPACES = re.compile(r"[ \u00a0\u2009\u202f]")
_NUMBER = re.compile(rf"(?<![\w.])(?:{NUMBER})(?:\s*/\s*\d+)?")
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}


@dataclass(frozen=True)
class Extraction:
    """What was found and how (``answer_tag``, ``boxed``, ``answer_line``, ``last_number``, ``whole``)."""

    value: str
    method: str


def strip_reasoning(text: str) -> str:
    """The text after the last ``</think>``; empty when a ``<think>`` is never closed."""
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        return text[closes[-1].end() :]
    if _THINK_OPEN.search(text):
        return ""
    return text


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\boxed 5``), braces balanced; None when absent."""
    for match in reversed(list(_BOXED.finditer(text))):
        start = match.end()
        if start < len(text) and text[start] == "{":
            depth = 0
            for pos in range(start, len(text)):
                if text[pos] == "{":
                    depth += 1
                elif text[pos] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[start + 1 : pos].strip()
            continue  # unbalanced: try an earlier box
        bare = re.match(r"[^\s$]+", text[start:])
        if bare:
            return bare.group(0)
    return None


def answer_tag(text: str) -> str | None:
    """Content of the last ``<answer>...</answer>``."""
    found = _ANSWER_TAG.findall(text)
    return found[-1].strip() if found else None


def answer_line(text: str) -> str | None:
    """The value of the last "Answer: X" / "The answer is X" line, without a trailing period."""
    found = [a or b or c for a, b, c in _ANSWER_LINE.findall(text)]
    if not found:
        return None
    value = found[-1].strip().strip("*$ ").rstrip(".").strip("*$ ")
    return value or None


def last_number(text: str) -> str | None:
    """The last number in ``text`` (thousands separators, decimals, signs, a/b fractions)."""
    found = _NUMBER.findall(text)
    return found[-1] if found else None


def final_answer(text: str, allow_last_number: bool = True) -> Extraction | None:
    """The response's final answer by the priority in the module docstring; None when there is none."""
    body = strip_reasoning(text)
    tagged = answer_tag(body)
    if tagged is not None:
        boxed = last_boxed(tagged)
        return Extraction(boxed if boxed is not None else tagged, "answer_tag")
    boxed = last_boxed(body)
    if boxed is not None:
        return Extraction(boxed, "boxed")
    line = answer_line(body)
    if line is not None:
        return Extraction(line, "answer_line")
    if allow_last_number:
        number = last_number(body)
        if number is not None:
            return Extraction(number, "last_number")
    return None


@dataclass(frozen=True)
class Number:
    value: float
    percent: bool


def parse_number(text: str) -> Number | None:
    """A number from an answer string.

    ``1,234.5``, ``12 000``, ``$12``, ``12 cm``, ``50%``, ``-3``, ``1/2``, ``\\frac{1}{2}``, ``\\frac12``,
    and mixed numbers ``1 1/2`` / ``1\\frac{1}{2}`` (one and a half, never eleven halves).
    """
    cleaned = text.strip().replace("−", "-").replace("\\!", "").replace("\\,", "").replace("{,}", ",")
    cleaned = re.sub(r"\\[dt]?frac\s*(?:\{([^{}]+)\}\s*\{([^{}]+)\}|(\d)\s*(\d))", _fraction, cleaned)
    cleaned = re.sub(
        r"\\text\{[^{}]*\}|\\(?:mathrm|mbox)\{[^{}]*\}|\\%", lambda m: "%" if m.group(0) == "\\%" else "", cleaned
    )
    cleaned = cleaned.replace("$", "").replace("\\", "").strip()
    mixed = re.search(r"(?<![\d.])([-+]?)(\d+)\s+(\d+)\s*/\s*(\d+)(?![\d.])", cleaned)
    if mixed and int(mixed.group(4)) > int(mixed.group(3)) > 0:
        whole = int(mixed.group(2)) + int(mixed.group(3)) / int(mixed.group(4))
        rest = cleaned[mixed.end() :].lstrip()
        return Number(-whole if mixed.group(1) == "-" else whole, rest.startswith("%"))
    match = re.search(rf"({ANSWER_NUMBER})(?:\s*/\s*({NUMBER}))?\s*(%)?", cleaned)
    if not match:
        return None
    try:
        value = float(_SPACES.sub("", match.group(1)).replace(",", "").replace("−", "-"))
        if match.group(2) is not None:
            denominator = float(match.group(2).replace(",", ""))
            if denominator == 0:
                return None
            value /= denominator
    except ValueError:
        return None
    return Number(value, match.group(3) is not None)


def _fraction(match: re.Match[str]) -> str:
    """``\\frac{a}{b}`` as ``a/b``, after a space when a whole number stands right before it (a mixed number)."""
    numerator, denominator = (match.group(1), match.group(2)) if match.group(1) is not None else match.group(3, 4)
    before = match.string[: match.start()]
    return (" " if before[-1:].isdigit() else "") + f"{numerator}/{denominator}"


def parse_count(text: str) -> int | None:
    """An integer count from an answer string: digits (``12``, ``12.0``) or a number word up to twenty."""
    word = re.fullmatch(r"\W*([a-zA-Z]+)\W*", text.strip())
    if word and word.group(1).lower() in _WORDS:
        return _WORDS[word.group(1).lower()]
    number = parse_number(text)
    if number is None or number.percent or number.value != int(number.value):
        return None
    return int(number.value)


def last_count_word(text: str) -> int | None:
    """The last number word (zero..twenty) in free text, for "there are three cats"."""
    found = re.findall(r"\b(" + "|".join(_WORDS) + r")\b", text.lower())
    return _WORDS[found[-1]] if found else None


_ANSWER_VERB = r"(?:\s*(?:is|must\s+be|should\s+be|would\s+be|will\s+be|ist|est|es|é|è|是|为|為|は|는|은))?"
_BEFORE_LETTER = r"(?:^|(?<=[\n.,;:!?(（]))\s*(?:so|thus|hence|therefore|then|and)?\s*(?:,\s*)?"
_CHOICE_PATTERNS = (  # (name, pattern); {L} is the letter group. Keywords any case, the letter upper case.
    (
        "answer",
        rf"(?i:{ANSWER_WORDS}){_ANSWER_VERB}\s*[:：]?\s*(?i:option\s*|choice\s*)?(?:\*\*)?[(（]?{{L}}[)）]?(?:\*\*)?",
    ),
    (
        "letter_is_correct",
        rf"{_BEFORE_LETTER}(?:\*\*)?[(（]?{{L}}[)）]?(?:\*\*)?\s+(?i:is|would\s+be|must\s+be|should\s+be)\s+"
        r"(?i:the\s+)?(?i:(?:correct|right|best|true)(?:\s+(?:answer|option|choice))?|answer)\b",
    ),
    ("option", r"(?i:option|choice)\s*(?i:(?:here\s+)?is\s*)?[:：]?\s*(?:\*\*)?\(?{L}\)?(?:\*\*)?"),
    ("pick", r"(?i:\b(?:pick|choose|select|go\s+with))\s+(?:\*\*)?\(?{L}\)?(?:\*\*)?"),
    ("bold", r"\*\*\(?{L}\)?[.)]?\*\*"),
)
_CHOICE_LINE = r"^\s*\(?{L}\)?\s*(?:[.:)]|$)"  # the last line starts with the letter alone: "(C)", "C.", "C) text"
# A letter touching one of these is part of a word ("CO2", "Vitamin-C" is fine); CJK characters around it are not.
_LATIN_WORD = re.compile(r"[0-9A-Za-z_\u00c0-\u024f]")
# After these the letters A and I read as the English words "a" / "I" ("A careful reading", "answer: I think").
_WORD_AFTER = re.compile(r"\s+(?!(?:is|because|since|as|and|or|which|was)\b)[a-z]")


def _is_letter(body: str, match: re.Match[str], group: int) -> bool:
    """The captured letter stands alone: no Latin letter or digit touches it, and an "A"/"I" is not the English word."""
    start, end = match.span(group)
    if (start > 0 and _LATIN_WORD.match(body[start - 1])) or (end < len(body) and _LATIN_WORD.match(body[end])):
        return False
    return not (match.group(group) in "AI" and _WORD_AFTER.match(body, end))


def choice_with_method(text: str, letters: str = "ABCDEFGHIJ") -> tuple[str, str] | None:
    """The letter a response commits to, and which rule found it (see ``extract_choice``)."""
    body = strip_reasoning(text)
    letter = rf"([{letters}])"
    for name, inner in (("answer_tag", answer_tag(body)), ("boxed", last_boxed(body))):
        if inner is not None:
            match = re.match(rf"^\s*(?:\\text\{{)?\(?{letter}\)?(?:\}})?(?:[.:)\s]|$)", inner)
            if match:
                return match.group(1), name
    for name, pattern in _CHOICE_PATTERNS:
        found = [
            m.group(1)
            for m in re.finditer(pattern.replace("{L}", letter), body, flags=re.MULTILINE)
            if _is_letter(body, m, 1)
        ]
        if found:
            return found[-1], name
    lines = [line for line in body.splitlines() if line.strip()]
    if lines:
        match = re.match(_CHOICE_LINE.replace("{L}", letter), lines[-1])
        if match and _is_letter(lines[-1], match, 1):
            return match.group(1), "last_line"
    return None


def extract_choice(text: str, letters: str = "ABCDEFGHIJ") -> str | None:
    """A multiple-choice letter from free text; a bare "A" in prose (the article) is never taken.

    In order, the first rule that finds a letter wins (the last letter it finds): the answer tag or
    box (a lone letter, ``(C)``, ``C. text``); an answer keyword in any of ``ANSWER_WORDS``'
    languages ("The answer is (C)", "Antwort: C", "答案：C"); the letter declared right ("C is
    correct", "C is the correct answer"); "Option C" / "the best choice is C"; "I pick C"; a bold
    letter ``**C**``; a last line that starts with the letter alone. A letter touching a word
    ("Vitamin C", "CO2") never counts, nor an "A" or "I" followed by a word ("A careful reading").
    The accepted and refused forms are tabled in docs/verifiers.md.
    """
    found = choice_with_method(text, letters)
    return found[0] if found else None


def extract_code(text: str, language: str = "python") -> str | None:
    """The last fenced code block in ``language`` (or without a language); None when there is none."""
    body = strip_reasoning(text)
    blocks = [(lang.lower(), code) for lang, code in _FENCE.findall(body)]
    for lang, code in reversed(blocks):
        if lang in (language, "", "py" if language == "python" else language):
            return code
    return None


def extract_json(text: str) -> tuple[Any, str | None]:
    """The JSON value a response gives, and an error message when it gives none that parses.

    Looks in a ```json fence, then the answer tag, then the first ``{``/``[`` that starts a valid
    document (``json.JSONDecoder.raw_decode``), so prose around the object is fine.
    """
    body = strip_reasoning(text)
    candidates = [code for lang, code in _FENCE.findall(body) if lang.lower() in ("json", "")]
    tagged = answer_tag(body)
    if tagged is not None:
        candidates.append(tagged)
    last_error = "no JSON object or array found"
    for candidate in reversed(candidates):
        try:
            return json.loads(candidate), None
        except json.JSONDecodeError as exc:
            last_error = f"malformed JSON: {exc}"
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", body):
        try:
            value, _end = decoder.raw_decode(body, match.start())
            return value, None
        except json.JSONDecodeError as exc:
            if not candidates:
                last_error = f"malformed JSON: {exc}"
    return None, last_error


_COORD = r"[-+−]?\d+(?:\.\d+)?"
_BOX = re.compile(
    rf"\[\s*({_COORD})\s*,\s*({_COORD})\s*,\s*({_COORD})\s*,\s*({_COORD})\s*\]"
    rf"|\(\s*({_COORD})\s*,\s*({_COORD})\s*\)\s*,?\s*\(\s*({_COORD})\s*,\s*({_COORD})\s*\)"
)


def extract_boxes(text: str) -> list[list[float]]:
    """Boxes ``[x1, y1, x2, y2]`` (or ``(x1,y1),(x2,y2)``) from the answer region of a response, in order."""
    body = strip_reasoning(text)
    region = answer_tag(body)
    if region is None:
        region = last_boxed(body) or body
    boxes = []
    for match in _BOX.finditer(region):
        numbers = [g for g in match.groups() if g is not None]
        boxes.append([float(n.replace("−", "-")) for n in numbers])
    return boxes
