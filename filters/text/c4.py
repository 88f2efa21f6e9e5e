"""C4 line filters (Raffel et al. 2020, section 2.2), with the clean-up C4's own code adds.

Line rules (a failing line is removed from the document; defaults in brackets):

- a word longer than ``max_word_length`` [1000] characters;
- no terminal punctuation (``. ? ! " '``) at the end, or a trailing "..." [``filter_no_terminal_punct``];
- fewer than ``min_words_per_line`` [3] words;
- the word "javascript" [``filter_javascript``]; a cookie / terms-of-use phrase [``filter_policy``].

Wikipedia-style citation marks ("[1]", "[edit]", "[citation needed]") are removed first, as C4 does.
Document rules (the document is dropped): "lorem ipsum" anywhere [``filter_lorem_ipsum``], a curly
bracket anywhere [``filter_curly_bracket``], fewer than ``min_sentences`` [5] sentences left.

With ``rewrite_text`` [True] a kept text document's text becomes its kept lines (and its
``content_hash`` follows; interleaved documents are judged but never rewritten, since their text
mirrors their segments); the counts of removed lines per rule are stored either way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.rules import below, first_failing
from fusionforge.filters.text.base import DEFAULT_MODALITIES, LANG_COLUMN, TextFilter, texts_of
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, set_column

TERMINAL_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
LINE_RULES = ("long_word", "no_terminal_punct", "too_few_words", "javascript", "policy")


@dataclass(frozen=True)
class C4Result:
    """What the C4 rules found in one document."""

    kept_lines: list[str]
    removed: dict[str, int]
    sentences: int
    lorem_ipsum: bool
    curly_bracket: bool


def c4_clean(
    text: str,
    *,
    max_word_length: int | None = 1000,
    filter_no_terminal_punct: bool = True,
    min_words_per_line: int | None = 3,
    filter_javascript: bool = True,
    filter_policy: bool = True,
    remove_citations: bool = True,
) -> C4Result:
    """Apply the C4 line rules to one document."""
    removed = dict.fromkeys(LINE_RULES, 0)
    kept: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        words = line.split()
        if max_word_length is not None and any(len(w) > max_word_length for w in words):
            removed["long_word"] += 1
            continue
        if remove_citations:
            line = CITATION.sub("", line).strip()
        lower = line.lower()
        if filter_no_terminal_punct and (not line.endswith(TERMINAL_PUNCTUATION) or line.endswith("...")):
            rule = "no_terminal_punct"
        elif min_words_per_line is not None and len(words) < min_words_per_line:
            rule = "too_few_words"
        elif filter_javascript and "javascript" in lower:
            rule = "javascript"
        elif filter_policy and any(phrase in lower for phrase in POLICY_PHRASES):
            rule = "policy"
        else:
            kept.append(line)
            continue
        removed[rule] += 1
    sentences = sum(max(1, len(SENTENCE_END.findall(line))) for line in kept)
    return C4Result(kept, removed, sentences, "lorem ipsum" in text.lower(), "{" in text)


@register
class C4Lines(TextFilter):
    """``text_c4_lines_v1``: C4's line removal and document rules (see the module docstring)."""

    name: ClassVar[str] = "text_c4_lines_v1"
    resources: ClassVar[Resources] = Resources(batch_size=1024)

    def __init__(
        self,
        min_sentences: int | None = 5,
        max_word_length: int | None = 1000,
        filter_no_terminal_punct: bool = True,
        min_words_per_line: int | None = 3,
        filter_javascript: bool = True,
        filter_policy: bool = True,
        filter_lorem_ipsum: bool = True,
        filter_curly_bracket: bool = True,
        remove_citations: bool = True,
        rewrite_text: bool = True,
        modalities: Sequence[str] = DEFAULT_MODALITIES,
        languages: Sequence[str] | None = None,
        lang_column: str = LANG_COLUMN,
    ) -> None:
        super().__init__(modalities, languages, lang_column)
        self.min_sentences = min_sentences
        self.line_options = {
            "max_word_length": max_word_length,
            "filter_no_terminal_punct": filter_no_terminal_punct,
            "min_words_per_line": min_words_per_line,
            "filter_javascript": filter_javascript,
            "filter_policy": filter_policy,
            "remove_citations": remove_citations,
        }
        self.filter_lorem_ipsum = filter_lorem_ipsum
        self.filter_curly_bracket = filter_curly_bracket
        self.rewrite_text = rewrite_text
        self._cleaned: dict[str, str] = {}

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        results = [c4_clean(text, **self.line_options) for text in texts_of(batch).to_pylist()]
        self._cleaned = {rid: "\n".join(r.kept_lines) for rid, r in zip(batch.column(S.ID).to_pylist(), results)}
        scores = {
            "kept_lines": pa.array([len(r.kept_lines) for r in results], pa.int64()),
            "sentences": pa.array([r.sentences for r in results], pa.int64()),
            "lorem_ipsum": pa.array([r.lorem_ipsum for r in results], pa.bool_()),
            "curly_bracket": pa.array([r.curly_bracket for r in results], pa.bool_()),
        }
        for rule in LINE_RULES:
            scores[f"removed_{rule}"] = pa.array([r.removed[rule] for r in results], pa.int64())
        return scores

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        lorem = scores["lorem_ipsum"].to_numpy(zero_copy_only=False).astype(bool)
        curly = scores["curly_bracket"].to_numpy(zero_copy_only=False).astype(bool)
        return first_failing(
            len(lorem),
            [
                ("lorem_ipsum", lorem & self.filter_lorem_ipsum),
                ("curly_bracket", curly & self.filter_curly_bracket),
                ("too_few_sentences", below(scores["sentences"].to_numpy(zero_copy_only=False), self.min_sentences)),
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
