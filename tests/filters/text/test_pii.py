"""PII: every kind found and redacted, look-alikes left alone, every other byte kept, offsets into the original.

The valid numbers are published references: card numbers from the card networks' test sets (Luhn and
IIN valid), IBANs from SWIFT's IBAN registry examples.
"""

import hashlib

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fusionforge.filters.text.pii import TextPII
from fusionforge.filters.text.pii_detect import KINDS, card_issuer_fits, find_pii, iban_valid, luhn_valid
from fusionforge.pipelines.core import schema as S

FOUND = {
    "email": ["jane.doe+news@example.co.uk", "x_y@mail.example.org"],
    "url_credentials": ["admin:hunter2"],  # of ftp://admin:hunter2@ftp.example.com
    "iban": [
        "GB29 NWBK 6016 1331 9268 19",
        "DE89370400440532013000",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
    ],
    "credit_card": [
        "4111 1111 1111 1111",  # Visa
        "5555-5555-5555-4444",  # Mastercard
        "3782 822463 10005",  # Amex, 4-6-5
        "6011111111111117",  # Discover
        "2223003122003222",  # Mastercard 2-series
        "3530111333300000",  # JCB
    ],
    "ipv4": ["192.168.0.1", "8.8.8.8"],
    "ipv6": ["2001:db8::8a2e:370:7334", "fe80::1ff:fe23:4567:890a"],
    "phone": [
        "+1 415-555-2671",
        "+44 (0)20 7946 0958",
        "(415) 555-2671",
        "020 7946 0958",
        "030/12345678",
        "01 23 45 67 89",
    ],
}
LOOK_ALIKES = [
    "4111 1111 1111 1112",  # Luhn fails
    "1234 5678 9012 3452",  # Luhn holds, no issuer starts with 1
    "GB29 NWBK 6016 1331 9268 18",  # mod-97 fails
    "DE8937040044053201300",  # one character short for Germany
    "version 1.2.3.4",
    "v10.0.0.1",
    "1.2.3.4.5",
    "256.1.1.1",
    "010.1.2.3",  # a leading zero
    "2023-10-05",
    "05.10.2023",
    "01-02-2023",
    "ISBN 978-3-16-148410-0",
    "ISBN 0-306-40615-2",
    "12:30:45",
    "std::vector a::b ::1",
    "MAC 00:1a:2b:3c:4d:5e",
    "order 12345678901234",
    "https://example.com/a@b and user@localhost",
    "+1 2",
]


def planted() -> tuple[str, list[tuple[str, str]]]:
    """A text with every kind, separated by multibyte words; (kind, piece) in text order."""
    words = ["Grüße 👋", "東京で", "naïve café", "Ελληνικά", "🇩🇪 emoji"]
    parts, pieces = [], []
    for i, (kind, values) in enumerate(FOUND.items()):
        for value in values:
            shown = f"ftp://{value}@ftp.example.com/pub" if kind == "url_credentials" else value
            parts.append(f"{words[len(pieces) % len(words)]} {shown}; ")
            pieces.append((kind, value))
        parts.append(f"{words[i % len(words)]}\n")
    return "".join(parts), pieces


def test_every_kind_is_found_at_its_offsets_in_the_original_text():
    text, pieces = planted()
    spans = find_pii(text)
    assert [(s.kind, text[s.start : s.end]) for s in spans] == pieces
    assert {s.kind for s in spans} == set(KINDS)
    arrow = pa.array([text])  # offsets count code points, as Arrow's utf8 kernels do
    assert all(pc.utf8_slice_codeunits(arrow, s.start, s.end)[0].as_py() == text[s.start : s.end] for s in spans)


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_are_left_alone(text):
    assert find_pii(f"See {text} here.") == []


REGIONS = ("US", "GB", "DE", "FR")


@pytest.mark.parametrize("number", FOUND["phone"])
def test_found_phone_numbers_are_valid_numbers_for_libphonenumber(number):
    """Google's libphonenumber (the phonenumbers port) is the reference: each phone found is a valid number."""
    assert [(s.kind, s.start, s.end) for s in find_pii(number)] == [("phone", 0, len(number))]
    assert any(phonenumbers.is_valid_number(phonenumbers.parse(number, region)) for region in REGIONS)


def test_libphonenumber_finds_no_phone_in_the_look_alikes_we_leave_alone_either():
    text = " ".join(LOOK_ALIKES).replace("ISBN 0-306-40615-2", "")  # libphonenumber takes that ISBN for a phone
    assert [m.raw_string for r in REGIONS for m in phonenumbers.PhoneNumberMatcher(text, r)] == []


def test_checks_agree_with_their_definitions():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")  # the Luhn article's example
    assert card_issuer_fits("378282246310005") and not card_issuer_fits("37828224631000")  # Amex is 15 digits
    assert iban_valid("BE68539007547034") and iban_valid("CH9300762011623852957")
    assert not iban_valid("BE68539007547035") and not iban_valid("XX68539007547034")


def test_redaction_keeps_every_other_byte_and_stores_spans(make_batch, make_record):
    text, pieces = planted()
    out = TextPII()(make_batch([make_record("t/0", text), make_record("t/1", "Nothing personal here: ünïcödé ✓.")]))
    redacted = out.column(S.TEXT).to_pylist()
    expected = text.encode()
    for kind, value in pieces:  # replace in the UTF-8 bytes, independently of the stage's string slicing
        expected = expected.replace(value.encode(), f"<{kind.upper()}>".encode(), 1)
    assert redacted[0].encode() == expected
    assert redacted[1] == "Nothing personal here: ünïcödé ✓."
    spans = out.column("text_pii_v1__spans").to_pylist()
    assert [text[s["start"] : s["end"]] for s in spans[0]] == [value for _, value in pieces]
    assert spans[1] == []
    assert out.column("text_pii_v1__count").to_pylist() == [len(pieces), 0]
    for kind in KINDS:
        assert out.column(f"text_pii_v1__{kind}").to_pylist() == [len(FOUND[kind]), 0]
    hashed = hashlib.sha256(b"text\x00" + expected).hexdigest()
    assert out.column(S.CONTENT_HASH).to_pylist()[0] == hashed
    assert out.column(S.DROP_REASON).to_pylist() == [None, None]


def test_mark_keeps_the_text_and_max_items_drops(make_batch, make_record):
    rows = [make_record("t/0", "mail a@example.com or b@example.com"), make_record("t/1", "call +49 30 12345678")]
    marked = TextPII(action="mark", max_items=1)(make_batch(rows))
    assert marked.column(S.TEXT).to_pylist() == [r[S.TEXT] for r in rows]
    assert marked.column(S.DROP_REASON).to_pylist() == ["text_pii_v1:too_much_pii", None]
    redacted = TextPII(max_items=1, tags={"email": "[email]"})(make_batch(rows))
    assert redacted.column(S.TEXT).to_pylist() == ["mail [email] or [email]", "call <PHONE>"]  # dropped: redacted too


def test_only_chosen_kinds_and_interleaved_parts_and_failed_rows(make_batch, make_record):
    segments = [
        {"type": "text", "text": "Write to a@example.com", "media_index": None},
        {"type": "image", "text": None, "media_index": 0},
        {"type": "text", "text": "or 10.0.0.7", "media_index": None},
    ]
    rows = [
        make_record(
            "t/0",
            "Write to a@example.com\n\nor 10.0.0.7",
            modality="interleaved",
            segments=segments,
            media=[{"kind": "image", "uri": "a.png", "sha256": "ab12"}],
        ),
        make_record("t/1", "a@example.com", error="earlier_stage:bad"),
    ]
    out = TextPII(kinds=["email"])(make_batch(rows))
    assert out.column(S.TEXT).to_pylist() == ["Write to <EMAIL>\n\nor 10.0.0.7", "a@example.com"]
    assert [p["text"] for p in out.column(S.SEGMENTS).to_pylist()[0]] == ["Write to <EMAIL>", None, "or 10.0.0.7"]
    assert out.column("text_pii_v1__count").to_pylist() == [1, None]
    assert "text_pii_v1__ipv4" not in out.column_names


def test_bad_settings_are_refused():
    for bad in ({"kinds": ["ssn"]}, {"action": "hide"}, {"max_items": -1}, {"tags": {"ssn": "<X>"}}):
        with pytest.raises(ValueError):
            TextPII(**bad)
