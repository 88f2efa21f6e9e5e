"""PII redaction throughput against datatrove's ``PIIFormatter`` on the same texts, in one process.

The corpus: web-like documents of Zipf-distributed words; a share of them carry planted personal
data of every kind (emails, public and private IPv4s, IPv6s, phones, valid card numbers and IBANs,
credentials in URLs) and look-alikes (cards and IBANs with bad checksums, version numbers, dates).

- fusionforge: the ``text_pii_v1`` stage over Arrow batches of 512 records (detection of seven kinds,
  redaction, spans, counts, content hashes);
- datatrove 0.10's ``PIIFormatter().format(text)`` per document (emails and public IPv4s only).

docs/s and CPU-seconds for each, ratio = fusionforge rate / datatrove rate (> 1: fusionforge is
faster), and agreement on the two kinds both find: emails, and IPv4s (datatrove's ``is_global``
ones, so private addresses are left out of the comparison).

    python bench/pii.py --docs 20000
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import time

import pyarrow as pa

from fusionforge.filters.text.pii import TextPII
from fusionforge.filters.text.pii_detect import find_pii
from fusionforge.pipelines.core import schema as S

WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there been one all we their has would when if so no will more can who out "
    "river market light history science garden station language winter council research village teacher"
).split()
PLANTED = (
    lambda r: (
        f"{r.choice(['anna', 'j.smith', 'info', 'x_y'])}{r.randint(1, 999)}@{r.choice(['example.org', 'mail.co.uk'])}"
    ),
    lambda r: f"{r.randint(11, 99)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",  # public mostly
    lambda r: f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}",
    lambda r: f"2001:db8::{r.randint(256, 4095):x}:{r.randint(1, 65535):x}",
    lambda r: f"+44 20 7946 {r.randint(1000, 9999)}",
    lambda r: f"({r.randint(201, 989)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}",
    lambda r: r.choice(["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005"]),
    lambda r: r.choice(["GB29 NWBK 6016 1331 9268 19", "DE89370400440532013000"]),
    lambda r: f"https://user{r.randint(1, 99)}:pw{r.randint(100, 999)}@db.example.com/x",
    lambda r: r.choice(["4111 1111 1111 1112", "GB29 NWBK 6016 1331 9268 18", "version 1.2.3.4", "2023-10-05"]),
)


def corpus(n: int, share: float, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    docs = []
    for _ in range(n):
        words = rng.choices(WORDS, weights, k=rng.randint(150, 600))
        for _ in range(rng.randint(1, 5)):  # web text has numbers: years, counts, prices
            words.insert(
                rng.randrange(len(words)),
                rng.choice(
                    [
                        str(rng.randint(1900, 2030)),
                        str(rng.randint(2, 99)),
                        f"{rng.randint(1, 99)}.{rng.randint(0, 99):02d}",
                    ]
                ),
            )
        if rng.random() < share:
            for _ in range(rng.randint(1, 4)):
                words.insert(rng.randrange(len(words)), rng.choice(PLANTED)(rng))
        docs.append(" ".join(words))
    return docs


def batches(docs: list[str], size: int = 512) -> list[pa.Table]:
    rows = [
        {S.ID: f"b/{i}", S.SOURCE: "b", S.MODALITY: "text", S.TEXT: t, S.INPUT_FILE: "b", S.INPUT_POSITION: i}
        for i, t in enumerate(docs)
    ]
    return [S.validate(pa.Table.from_pylist(rows[i : i + size])) for i in range(0, len(rows), size)]


def timed(run) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def agreement(docs: list[str]) -> dict[str, dict[str, int]]:
    """Matches found by both, by fusionforge only, by datatrove only; datatrove's own matches explained."""
    from datatrove.pipeline.formatters import PIIFormatter

    formatter = PIIFormatter()
    out = {kind: {"both": 0, "only_fusionforge": 0, "only_datatrove": 0} for kind in ("email", "ipv4")}
    explained = {"password@host of a credential URL": 0, "version number": 0}
    for text in docs:
        spans = find_pii(text)
        ours = {(s.kind, s.start, s.end) for s in spans}
        ours = {
            (k, a, b) for k, a, b in ours if k == "email" or (k == "ipv4" and ipaddress.ip_address(text[a:b]).is_global)
        }
        theirs = {("email", *m.span()) for m in formatter.emails_replacer.regex.finditer(text)}
        theirs |= {
            ("ipv4", *m.span())
            for m in formatter.ip_replacer.regex.finditer(text)
            if formatter.ip_replacer.validator(m.group())
        }
        for kind, start, end in ours | theirs:
            side = (
                "both"
                if (kind, start, end) in ours & theirs
                else "only_fusionforge"
                if (kind, start, end) in ours
                else "only_datatrove"
            )
            out[kind][side] += 1
            if side == "only_datatrove":
                inside = any(s.kind == "url_credentials" and s.start < end and start < s.end for s in spans)
                if inside:
                    explained["password@host of a credential URL"] += 1
                elif kind == "ipv4" and "version" in text[max(0, start - 9) : start]:
                    explained["version number"] += 1
    return {**out, "only_datatrove_explained": explained}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--share", type=float, default=0.3, help="share of documents with planted data")
    args = parser.parse_args()
    from datatrove.pipeline.formatters import PIIFormatter

    docs = corpus(args.docs, args.share)
    tables = batches(docs)
    stage, formatter = TextPII(), PIIFormatter()
    ff_wall, ff_cpu = timed(lambda: [stage(t) for t in tables])
    dt_wall, dt_cpu = timed(lambda: [formatter.format(t) for t in docs])
    found = sum(sum(t.column("text_pii_v1__count").to_pylist()) for t in map(stage, tables[:2]))
    result = {
        "docs": len(docs),
        "mb": round(sum(map(len, docs)) / 1e6, 1),
        "fusionforge_docs_per_s": round(len(docs) / ff_wall),
        "datatrove_docs_per_s": round(len(docs) / dt_wall),
        "ratio_wall": round(dt_wall / ff_wall, 2),
        "ratio_cpu": round(dt_cpu / ff_cpu, 2),
        "pieces_found_first_1024_docs": found,
        "agreement": agreement(docs),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
