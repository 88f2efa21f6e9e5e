"""Finding personal data in text: regular expressions for candidates, checksums and tables to confirm them.

A pattern alone matches too much (any 16 digits, any two letters and digits), so each kind is a
candidate pattern plus a check, and the checks err on the side of leaving text alone:

- ``email``: local part, ``@``, a dotted domain ending in a 2-24 letter top-level domain.
- ``url_credentials``: the ``user:password`` of ``scheme://user:password@host`` (the scheme and
  the host stay; a user name without a password is not a credential).
- ``iban``: two letters, two check digits, then exactly the length the country's IBAN has (SWIFT's
  IBAN registry), printed in one piece or in groups split by single spaces, and ISO 13616's
  mod-97 check.
- ``credit_card``: 13-19 digits, in one piece or in groups of 3-6 split by one kind of separator
  (space or hyphen), passing the Luhn check and starting with an issuer prefix (IIN) whose card
  lengths include this one (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro, Mir).
- ``ipv6``: colon-separated hex groups (with ``::`` or an IPv4 tail) that Python's ``ipaddress``
  accepts, with at least two groups written out, one of them of 3-4 digits (so ``::1``, ``a::b``
  or ``std::vec`` in code are not addresses).
- ``ipv4``: four dot-separated numbers 0-255 without leading zeros, not part of a longer dotted
  run (``1.2.3.4.5``) and not a version: a quad right after "v", "version", "ver", "release",
  "build" or "rev" (as in "version 1.2.3.4") is left alone.
- ``phone``: an international number (``+`` and 8-15 digits, E.164's maximum, with single spaces,
  dots or hyphens between digit groups and an optional ``(0)``/area code in parentheses); a North
  American number (``(415) 555-2671``, ``415-555-2671``, ``415.555.2671``: area code and exchange
  starting 2-9, one kind of separator); or a national number with a trunk prefix (``020 7946
  0958``, ``030/12345678``, ``01 23 45 67 89``: a leading 0, groups split by one kind of separator,
  10-11 digits, not inside a longer run of digit groups). Digits in one piece, dates (at most 8
  digits) and ISBNs (no leading "+" or 0 group of two or more digits) are not phone numbers.
- Only ASCII e-mail addresses are found (internationalised addresses are left alone).

Kinds are tried in the order of ``KINDS``; a span that overlaps an earlier kind's is dropped (the
password in a credential URL is not also an email). Offsets are Python string indices: Unicode
code points of the text, as Arrow's ``utf8_slice_codeunits`` counts them, not UTF-8 bytes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Each pattern starts with a character (class) and checks what precedes it after that first character:
# a pattern that starts with a look-behind is tried at every position, one that starts with a
# character is searched for it first (measured: 3-50x faster per pattern on web-like text).
KINDS = ("url_credentials", "email", "iban", "credit_card", "ipv6", "ipv4", "phone")


@dataclass(frozen=True)
class Span:
    """One piece of personal data: its kind and where it is (``text[start:end]``, code points)."""

    kind: str
    start: int
    end: int


_EMAIL = re.compile(
    r"[A-Za-z0-9](?<![\w.+%-][A-Za-z0-9])(?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
_URL_CREDENTIALS = re.compile(r"(?<![\w+.-])[A-Za-z][A-Za-z0-9+.-]{0,15}://([^\s/?#@:]+:[^\s/?#@]+)@[\w\[]")
_IBAN = re.compile(r"[A-Z](?<![0-9A-Za-z][A-Z])[A-Z][0-9]{2}(?: ?[0-9A-Z]){10,30}")
_CARD = re.compile(r"[0-9](?<![0-9A-Za-z.,-][0-9])(?:[ -]?[0-9]){12,18}(?![0-9A-Za-z]|[-.,][0-9])")
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?(?![0-9A-Za-z:])"
)
_IPV4 = re.compile(r"[0-9](?<![0-9A-Za-z.][0-9])[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?![0-9]|\.[0-9])")
_OCTET = re.compile(r"25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]")
_VERSION_BEFORE = re.compile(r"(?i)(?:\bv|\bversion|\bver\.?|\brelease|\bbuild|\brev\.?)[\s:]*$")
_PHONE_INTERNATIONAL = re.compile(r"\+(?<![\w+]\+)[1-9](?:[ .-]?(?:[0-9]|\([0-9]{1,4}\))){6,17}(?![0-9])")
_PHONE_NANP = re.compile(
    r"[(2-9](?<![\w+(.-][(2-9])(?:(?<=\()[2-9][0-9]{2}\) ?|(?<=[2-9])[0-9]{2}([-. ]))[2-9][0-9]{2}([-. ])[0-9]{4}"
    r"(?![0-9]|[-.][0-9])"
)
_PHONE_TRUNK = re.compile(
    r"0(?<![\w+.-]0)(?<![0-9][ /-]0)[1-9][0-9]{0,3}(?:([ /-])[0-9]{2,8}){1,4}(?![0-9]|[-./ ][0-9])"
)
_DIGIT = re.compile(r"[0-9]")

# SWIFT IBAN registry: country -> IBAN length.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# Issuer prefixes: (lowest, highest prefix, card lengths); a number matches when its first digits lie in the range.
CARD_ISSUERS = (
    ("4", "4", (13, 16, 19)),  # Visa
    ("51", "55", (16,)),  # Mastercard
    ("2221", "2720", (16,)),  # Mastercard 2-series
    ("34", "34", (15,)),  # American Express
    ("37", "37", (15,)),
    ("6011", "6011", (16, 17, 18, 19)),  # Discover
    ("644", "649", (16, 17, 18, 19)),
    ("65", "65", (16, 17, 18, 19)),
    ("300", "305", (14, 15, 16, 17, 18, 19)),  # Diners Club
    ("36", "36", (14, 15, 16, 17, 18, 19)),
    ("38", "39", (16, 17, 18, 19)),
    ("3528", "3589", (16, 17, 18, 19)),  # JCB
    ("62", "62", (16, 17, 18, 19)),  # UnionPay
    ("5018", "5018", (13, 14, 15, 16, 17, 18, 19)),  # Maestro
    ("5020", "5020", (13, 14, 15, 16, 17, 18, 19)),
    ("5038", "5038", (13, 14, 15, 16, 17, 18, 19)),
    ("5893", "5893", (13, 14, 15, 16, 17, 18, 19)),
    ("6304", "6304", (13, 14, 15, 16, 17, 18, 19)),
    ("6759", "6759", (13, 14, 15, 16, 17, 18, 19)),
    ("6761", "6763", (13, 14, 15, 16, 17, 18, 19)),
    ("2200", "2204", (16, 17, 18, 19)),  # Mir
)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a digit string."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_issuer_fits(digits: str) -> bool:
    """Whether some issuer's prefix range and card lengths admit this number."""
    return any(lo <= digits[: len(lo)] <= hi and len(digits) in lengths for lo, hi, lengths in CARD_ISSUERS)


def iban_valid(compact: str) -> bool:
    """ISO 13616: the country's registered length and ``int(rearranged) % 97 == 1``."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _emails(text: str) -> Iterable[tuple[int, int]]:
    if "@" in text:
        yield from (m.span() for m in _EMAIL.finditer(text))


def _url_credentials(text: str) -> Iterable[tuple[int, int]]:
    if "://" in text:
        yield from (m.span(1) for m in _URL_CREDENTIALS.finditer(text))


def _ibans(text: str) -> Iterable[tuple[int, int]]:
    at = 0
    while match := _IBAN.search(text, at):
        candidate, start = match.group(), match.start()
        at = start + 1  # a candidate may run into the words after it, and a next IBAN may start there
        want = IBAN_LENGTHS.get(candidate[:2])
        if want is None:
            continue
        places = [i for i, char in enumerate(candidate) if char != " "]  # spaces skipped
        if len(places) < want:
            continue
        end = places[want - 1] + 1
        stop = start + end
        followed = stop < len(text) and text[stop].isalnum()
        if not followed and iban_valid(candidate[:end].replace(" ", "")):
            yield start, stop
            at = stop


def _cards(text: str) -> Iterable[tuple[int, int]]:
    for match in _CARD.finditer(text):
        candidate = match.group()
        groups = re.split(r"[ -]", candidate)
        mixed = len(set(re.findall(r"[ -]", candidate))) > 1
        if len(groups) > 1 and (mixed or not all(3 <= len(g) <= 6 for g in groups)):
            continue
        digits = "".join(groups)
        if luhn_valid(digits) and card_issuer_fits(digits):
            yield match.span()


def _ipv6(text: str) -> Iterable[tuple[int, int]]:
    if "::" not in text and text.count(":") < 7:
        return
    for match in _IPV6.finditer(text):
        candidate = match.group()
        groups = [g for g in candidate.split(":") if g]
        if len(groups) < 2 or max(map(len, groups)) < 3:  # "a::b" in code is no address
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield match.span()


def _ipv4(text: str) -> Iterable[tuple[int, int]]:
    for match in _IPV4.finditer(text):
        if not all(_OCTET.fullmatch(octet) for octet in match.group().split(".")):
            continue  # over 255, or a leading zero
        if not _VERSION_BEFORE.search(text, max(0, match.start() - 12), match.start()):
            yield match.span()


def _phones(text: str) -> Iterable[tuple[int, int]]:
    for match in _PHONE_INTERNATIONAL.finditer(text):
        digits = len(_DIGIT.findall(match.group().replace("(0)", "")))
        if 8 <= digits <= 15:
            yield match.span()
    for match in _PHONE_NANP.finditer(text):
        first, second = match.group(1), match.group(2)
        if first is None or first == second:
            yield match.span()
    for match in _PHONE_TRUNK.finditer(text):
        separators = set(re.findall(r"[ /-]", match.group()))
        if len(separators) == 1 and 10 <= len(_DIGIT.findall(match.group())) <= 11:
            yield match.span()


FINDERS: dict[str, Callable[[str], Iterable[tuple[int, int]]]] = {
    "url_credentials": _url_credentials,
    "email": _emails,
    "iban": _ibans,
    "credit_card": _cards,
    "ipv6": _ipv6,
    "ipv4": _ipv4,
    "phone": _phones,
}


def check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """``kinds`` in detection order; an unknown kind is a ``ValueError`` naming the known ones."""
    wanted = set(kinds)
    unknown = wanted - set(KINDS)
    if unknown or not wanted:
        raise ValueError(f"PII kinds must be a non-empty subset of {list(KINDS)}, got {sorted(wanted)}")
    return tuple(k for k in KINDS if k in wanted)


def find_pii(text: str, kinds: tuple[str, ...] = KINDS) -> list[Span]:
    """Every piece of personal data of ``kinds`` in ``text``, in text order, none overlapping."""
    taken: list[Span] = []
    numeric = _DIGIT.search(text) is not None  # every kind but email and url_credentials needs a digit
    for kind in kinds if numeric else [k for k in kinds if k in ("url_credentials", "email")]:
        for start, end in FINDERS[kind](text):
            if not any(start < s.end and s.start < end for s in taken):
                taken.append(Span(kind, start, end))
    return sorted(taken, key=lambda s: s.start)


def redact(text: str, spans: list[Span], tags: dict[str, str]) -> str:
    """``text`` with each span replaced by its kind's tag; every other character is kept as it was."""
    pieces, at = [], 0
    for span in spans:
        pieces += [text[at : span.start], tags[span.kind]]
        at = span.end
    pieces.append(text[at:])
    return "".join(pieces)
