"""Documents per web domain (the host of ``meta.url``), per step: which sites a crawl's documents come from.

Counts stay bounded whatever the crawl: a state keeps at most ``MAX_DOMAINS`` domains; past that the
least frequent are folded into ``OTHER`` (each merge keeps the most frequent), so counts are exact
for corpora of up to ``MAX_DOMAINS`` domains and the top of the table stays right beyond (a domain
is undercounted only by what it had while it was outside the kept set). ``www.`` is dropped from
hosts, so ``www.example.org`` and ``example.org`` are one domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.pipelines.core import schema as S

MAX_DOMAINS = 10_000
MAX_ROWS = 20  # rows of the report's table; the rest are summed in its last row
OTHER = "(other domains)"
_META_HOST = r'"url"\s*:\s*"[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/"]*@)?(?P<host>[^/:"?#]+)'


def domains(batch: pa.RecordBatch) -> pa.Array:
    """Per record: the lower-case host of the first ``"url"`` in ``meta`` (its page), without ``www.``; else null."""
    if S.META not in batch.schema.names:
        return pa.nulls(batch.num_rows, pa.string())
    found = pc.extract_regex(batch.column(S.META).cast(pa.large_string()), _META_HOST)
    hosts = pc.if_else(pc.is_valid(found), pc.struct_field(found, "host"), None)
    return pc.replace_substring_regex(pc.utf8_lower(hosts), r"^www\.", "").cast(pa.string())


@dataclass
class DomainCounts:
    """Records per domain (at most ``MAX_DOMAINS`` of them, plus ``OTHER``)."""

    counts: dict[str, float] = field(default_factory=dict)

    def fold(self, batch: pa.RecordBatch) -> None:
        values = domains(batch)
        if values.null_count == len(values):
            return
        for entry in pc.value_counts(values.drop_null()).to_pylist():
            self.counts[entry["values"]] = self.counts.get(entry["values"], 0) + entry["counts"]
        self._cap()

    def merge(self, other: DomainCounts) -> DomainCounts:
        for domain, n in other.counts.items():
            self.counts[domain] = self.counts.get(domain, 0) + n
        self._cap()
        return self

    def scaled(self, factor: float) -> DomainCounts:
        return DomainCounts({k: v * factor for k, v in self.counts.items()})

    def _cap(self) -> None:
        named = [(n, d) for d, n in self.counts.items() if d != OTHER]
        if len(named) <= MAX_DOMAINS:
            return
        named.sort(key=lambda item: (-item[0], item[1]))
        other = self.counts.get(OTHER, 0) + sum(n for n, _ in named[MAX_DOMAINS:])
        self.counts = {d: n for n, d in named[:MAX_DOMAINS]} | {OTHER: other}


def domains_section(per_step: dict[str, DomainCounts]) -> dict[str, Any] | None:
    """Kept records per domain after each step (steps in order), the most frequent first; None without URLs."""
    steps = [step for step, counts in per_step.items() if counts.counts]
    if not steps:
        return None
    first = per_step[steps[0]].counts
    ranked = sorted((d for d in first if d != OTHER), key=lambda d: (-first[d], d))
    shown = ranked[:MAX_ROWS]
    rows = [{"domain": d, "records": {s: round(per_step[s].counts.get(d, 0)) for s in steps}} for d in shown]
    rest = {s: round(sum(per_step[s].counts.values())) - sum(row["records"][s] for row in rows) for s in steps}
    if any(rest.values()):
        rows.append({"domain": OTHER, "records": rest})
    return {"steps": steps, "domains": len(ranked), "capped": OTHER in first, "rows": rows}
