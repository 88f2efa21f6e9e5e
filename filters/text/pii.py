"""``text_pii_v1``: find personal data in text, store where it was, and redact it (or only mark it).

What counts as personal data and how each kind is confirmed is in ``pii_detect.py``. Defaults:
every kind (``email``, ``phone``, ``ipv4``, ``ipv6``, ``credit_card``, ``iban``,
``url_credentials``); every modality (documents, interleaved documents, and the captions of images
and videos); ``action`` ``redact``; ``max_items`` off; tags ``<EMAIL>``, ``<PHONE>``, ``<IPV4>``,
``<IPV6>``, ``<CREDIT_CARD>``, ``<IBAN>``, ``<URL_CREDENTIALS>`` (``tags`` overrides any of them).

- ``action: redact`` rewrites ``text`` with each span replaced by its kind's tag and every other
  character untouched (so every other byte of the UTF-8 text too), in the text parts of an
  interleaved document as well, and recomputes ``content_hash``. Every judged record is redacted,
  also one this or an earlier filter drops, since ``rejected/`` is written out too.
- ``action: mark`` leaves the text as it is; the spans and counts are stored either way.
- ``max_items: N`` drops a record with more than N pieces of personal data (``too_much_pii``).

Scores: ``spans`` (a list of ``{kind, start, end}`` in the ORIGINAL text, as Python string indices:
Unicode code points, not UTF-8 bytes; ``text[start:end]`` is the redacted piece), ``count``, and
one count column per kind (``text_pii_v1__email`` ...), whose totals the filter report gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import pyarrow as pa

from fusionforge.filters.rules import exceeds
from fusionforge.filters.text.base import ALL_MODALITIES, TextFilter, texts_of
from fusionforge.filters.text.pii_detect import KINDS, Span, check_kinds, find_pii, redact
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.bounds import NON_NEGATIVE_INT
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, set_column

ACTIONS = ("redact", "mark")
SPAN_TYPE = pa.list_(pa.struct([("kind", pa.string()), ("start", pa.int64()), ("end", pa.int64())]))
DEFAULT_TAGS = {kind: f"<{kind.upper()}>" for kind in KINDS}
TOO_MUCH = "too_much_pii"


@register
class TextPII(TextFilter):
    """Personal data in text: spans and counts per kind stored, text redacted (or marked), optional drop."""

    name: ClassVar[str] = "text_pii_v1"
    resources: ClassVar[Resources] = Resources(batch_size=512)

    def __init__(
        self,
        kinds: Sequence[str] = KINDS,
        action: str = "redact",
        max_items: int | None = None,
        tags: Mapping[str, str] | None = None,
        modalities: Sequence[str] = ALL_MODALITIES,
        languages: Sequence[str] | None = None,
    ) -> None:
        super().__init__(modalities, languages)
        self.kinds = check_kinds(kinds)
        if action not in ACTIONS:
            raise ValueError(f"{self.name}: action must be one of {list(ACTIONS)}, got {action!r}")
        NON_NEGATIVE_INT.require(f"{self.name}: max_items", max_items, ValueError)
        unknown = set(tags or {}) - set(KINDS)
        if unknown:
            raise ValueError(f"{self.name}: tags for unknown kinds {sorted(unknown)}; kinds are {list(KINDS)}")
        self.action = action
        self.max_items = max_items
        self.tags = {**DEFAULT_TAGS, **dict(tags or {})}
        self._found: dict[str, list[Span]] = {}

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        found = [find_pii(text, self.kinds) for text in texts_of(batch).to_pylist()]
        self._found = dict(zip(batch.column(S.ID).to_pylist(), found))
        scores = {
            "spans": pa.array([[vars(s) for s in spans] for spans in found], SPAN_TYPE),
            "count": pa.array([len(spans) for spans in found], pa.int64()),
        }
        for kind in self.kinds:
            scores[kind] = pa.array([sum(s.kind == kind for s in spans) for spans in found], pa.int64())
        return scores

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        many = exceeds(scores["count"].to_numpy(zero_copy_only=False), self.max_items)
        return [TOO_MUCH if flag else None for flag in many]

    def __call__(self, batch: pa.Table) -> pa.Table:
        self._found = {}
        out = super().__call__(batch)
        if self.action != "redact" or not any(self._found.values()):
            return out
        return self._redact(out)

    def _redact(self, batch: pa.Table) -> pa.Table:
        """Each judged row with findings gets its redacted text (and text parts) and a content hash to match."""
        ids = batch.column(S.ID).to_pylist()
        rows = [i for i, rid in enumerate(ids) if self._found.get(rid)]
        texts = batch.column(S.TEXT).to_pylist()
        segments = batch.column(S.SEGMENTS).to_pylist()
        hashes = batch.column(S.CONTENT_HASH).to_pylist()
        modalities = batch.column(S.MODALITY).to_pylist()
        media = batch.column(S.MEDIA).to_pylist()
        for row in rows:
            texts[row] = redact(texts[row], self._found[ids[row]], self.tags)
            if segments[row]:
                segments[row] = [self._redact_part(part) for part in segments[row]]
            media_hashes = [m["sha256"] for m in media[row] or []]
            hashes[row] = S.content_hash(modalities[row], texts[row], media_hashes, segments[row])
        batch = set_column(batch, S.TEXT, pa.array(texts, batch.schema.field(S.TEXT).type))
        batch = set_column(batch, S.SEGMENTS, pa.array(segments, batch.schema.field(S.SEGMENTS).type))
        return set_column(batch, S.CONTENT_HASH, pa.array(hashes, pa.string()))

    def _redact_part(self, part: dict) -> dict:
        if part.get("type") != "text" or not part.get("text"):
            return part
        return {**part, "text": redact(part["text"], find_pii(part["text"], self.kinds), self.tags)}
