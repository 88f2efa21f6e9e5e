"""Paragraphs that repeat over many documents (navigation, cookie notices, footers) leave every document.

MINT-1T removed duplicated paragraphs with a Bloom filter; here a paragraph is keyed by the 64-bit
xxh3 of its exact-normalised text (NFC, case folded, whitespace collapsed: ``text_normalize.py``),
``pipelines/dedupe/paragraphs.py`` counts in how many documents each key occurs, and the keys of
paragraphs found in at least ``paragraph_min_docs`` documents (the *frequent* keys, sorted, in one
``.npy`` file) are what ``dedupe_paragraphs_v1`` removes. Unlike a Bloom filter's "seen before", the
count removes boilerplate from the first document too and leaves a paragraph that two documents
happen to share alone. A paragraph is a run of text between blank lines; an interleaved document's
text parts are split the same way, and a part left empty goes (its images stay).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from fusionforge.filters.dedup.text_normalize import normalize_exact
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, Stage, add_drop_reasons, set_column

BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
EMPTIED = "dedupe:boilerplate_only"  # the drop reason of a document that had nothing but frequent paragraphs
REMOVED_COLUMN = "dedupe__paragraphs_removed"
DOCUMENTS = (S.Modality.TEXT.value, S.Modality.INTERLEAVED.value)  # what has paragraphs (captions are left alone)


def split_paragraphs(text: str | None) -> list[str]:
    """The paragraphs of a text: runs between blank lines, stripped, empty ones left out."""
    return [p.strip() for p in BLANK_LINE.split(text or "") if p.strip()]


def paragraph_keys(paragraphs: list[str]) -> np.ndarray:
    """The 64-bit key of each paragraph (xxh3 of its exact-normalised text)."""
    normalized = normalize_exact(paragraphs).to_pylist()
    return np.array([xxhash.xxh3_64_intdigest(p.encode("utf-8")) for p in normalized], np.uint64)


def document_texts(modality: str, text: str | None, segments: list[dict] | None) -> list[str]:
    """The texts whose paragraphs count: a text document's text, an interleaved document's text parts."""
    if modality not in DOCUMENTS:
        return []
    if modality == S.Modality.INTERLEAVED:
        return [s.get("text") or "" for s in segments or [] if s.get("type") == "text"]
    return [text or ""]


def document_keys(modality: str, text: str | None, segments: list[dict] | None) -> np.ndarray:
    """The distinct paragraph keys of one document (a paragraph it repeats counts once)."""
    paragraphs = [p for part in document_texts(modality, text, segments) for p in split_paragraphs(part)]
    return np.unique(paragraph_keys(paragraphs)) if paragraphs else np.empty(0, np.uint64)


def is_frequent(keys: np.ndarray, frequent: np.ndarray) -> np.ndarray:
    """Which of ``keys`` are in the sorted array ``frequent``."""
    if not len(frequent) or not len(keys):
        return np.zeros(len(keys), bool)
    at = np.minimum(np.searchsorted(frequent, keys), len(frequent) - 1)
    return frequent[at] == keys


def strip_frequent(text: str | None, frequent: np.ndarray) -> tuple[str, int]:
    """``text`` without its frequent paragraphs (the rest joined by blank lines), and how many went."""
    paragraphs = split_paragraphs(text)
    gone = is_frequent(paragraph_keys(paragraphs), frequent) if paragraphs else np.zeros(0, bool)
    if not gone.any():
        return text or "", 0
    return "\n\n".join(p for p, g in zip(paragraphs, gone) if not g), int(gone.sum())


@register
class DedupeParagraphs(Stage):
    """``dedupe_paragraphs_v1``: removes the frequent paragraphs (``frequent_path``) from every kept document.

    Only text and interleaved documents are looked at; dropped and failed records are left as they
    were. A document that had nothing but frequent paragraphs (and no image) is dropped as
    ``dedupe:boilerplate_only``; ``dedupe__paragraphs_removed`` counts the paragraphs each document
    lost (null for records not looked at).
    """

    name: ClassVar[str] = "dedupe_paragraphs_v1"
    resources: ClassVar[Resources] = Resources(batch_size=1024)

    def __init__(self, frequent_path: str) -> None:
        self.frequent_path = frequent_path
        self._frequent: np.ndarray | None = None

    @property
    def frequent(self) -> np.ndarray:
        if self._frequent is None:
            self._frequent = np.load(Path(self.frequent_path))
        return self._frequent

    def __call__(self, batch: pa.Table) -> pa.Table:
        alive = pc.and_(batch.column(S.DROP_REASON).is_null(), batch.column(S.ERROR).is_null()).to_pylist()
        columns = {c: batch.column(c).to_pylist() for c in (S.TEXT, S.SEGMENTS, S.CONTENT_HASH)}
        modalities, media = batch.column(S.MODALITY).to_pylist(), batch.column(S.MEDIA).to_pylist()
        removed: list[int | None] = [None] * batch.num_rows
        reasons: list[str | None] = [None] * batch.num_rows
        documents = [m in DOCUMENTS for m in modalities]
        for row in np.flatnonzero(np.array(alive, bool) & np.array(documents, bool)):
            changed = self._strip_row(modalities[row], columns[S.TEXT][row], columns[S.SEGMENTS][row])
            removed[row] = changed["removed"] if changed else 0
            if not changed:
                continue
            columns[S.TEXT][row], columns[S.SEGMENTS][row] = changed["text"], changed["segments"]
            hashes = [m.get("sha256") for m in media[row] or []]
            columns[S.CONTENT_HASH][row] = S.content_hash(modalities[row], changed["text"], hashes, changed["segments"])
            if not changed["text"].strip() and not any(s.get("type") == "image" for s in changed["segments"] or []):
                reasons[row] = EMPTIED
        for name, values in columns.items():
            batch = set_column(batch, name, pa.array(values, S.RECORD_SCHEMA.field(name).type))
        batch = set_column(batch, REMOVED_COLUMN, pa.array(removed, pa.int64()))
        return add_drop_reasons(batch, pa.array(reasons, pa.string()))

    def _strip_row(self, modality: str, text: str | None, segments: list[dict] | None) -> dict[str, Any] | None:
        """The record's new text and segments without frequent paragraphs, or None when it has none."""
        if modality != S.Modality.INTERLEAVED:
            stripped, count = strip_frequent(text, self.frequent)
            return {"text": stripped, "segments": segments, "removed": count} if count else None
        total, parts = 0, []
        for segment in segments or []:
            if segment.get("type") != "text":
                parts.append(segment)
                continue
            stripped, count = strip_frequent(segment.get("text"), self.frequent)
            total += count
            if stripped.strip():
                parts.append({**segment, "text": stripped})
        if not total:
            return None
        joined = "\n\n".join(s["text"] for s in parts if s.get("type") == "text")
        return {"text": joined, "segments": parts, "removed": total}
