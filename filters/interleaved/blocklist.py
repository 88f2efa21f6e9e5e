"""``web_blocklist_v1``: drop web documents by their page's domain, URL, or the URLs of their images.

The user gives the lists (inline, or as files of one entry a line; blank lines and ``#`` comments
are skipped), as OBELICS and MINT-1T did with theirs (OBELICS bans image URLs containing "porn",
"xxx" or "sex" beside its logo/icon words; no list ships here). Reasons, in order: ``blocked_domain`` (the host
of ``meta.url`` is a listed domain or below one: ``example.com`` blocks ``www.example.com``),
``blocked_url`` (the page URL contains a listed substring, case folded), ``blocked_image_url`` (an
image URL of ``meta.images`` contains a listed substring). Only records with a ``meta.url`` are
judged (WARC pages, fetched pairs); the score ``blocked_by`` names the entry that matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.filters.interleaved.parts import load_meta
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, ScoringStage


def read_entries(values: Sequence[str] | None, path: str | None) -> list[str]:
    """The entries given inline and in the file ``path`` (one a line; blanks and ``#`` comments skipped)."""
    entries = [v.strip() for v in values or () if v.strip()]
    if path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read the block list {path}: {exc}") from exc
        entries += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return entries


def host_of(url: str) -> str:
    """The URL's host, lower case, without a trailing dot ('' when it has none)."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def blocked_domain(host: str, domains: frozenset[str]) -> str | None:
    """The listed domain ``host`` is or lies below, else None."""
    labels = host.split(".")
    for i in range(len(labels)):
        suffix = ".".join(labels[i:])
        if suffix in domains:
            return suffix
    return None


@register
class WebBlocklist(ScoringStage):
    """``web_blocklist_v1``: domain, URL and image-URL block lists (see the module docstring)."""

    name: ClassVar[str] = "web_blocklist_v1"
    resources: ClassVar[Resources] = Resources(batch_size=1024)

    def __init__(
        self,
        domains: Sequence[str] | None = None,
        domains_file: str | None = None,
        url_substrings: Sequence[str] | None = None,
        url_substrings_file: str | None = None,
        image_url_substrings: Sequence[str] | None = None,
        image_url_substrings_file: str | None = None,
    ) -> None:
        self.domains = frozenset(d.lower().strip(".") for d in read_entries(domains, domains_file))
        self.url_substrings = tuple(s.casefold() for s in read_entries(url_substrings, url_substrings_file))
        self.image_url_substrings = tuple(
            s.casefold() for s in read_entries(image_url_substrings, image_url_substrings_file)
        )
        if not (self.domains or self.url_substrings or self.image_url_substrings):
            raise ValueError(
                f"{self.name}: the block lists are empty; give domains, url_substrings or image_url_substrings"
            )

    def applies(self, batch: pa.Table) -> pa.Array:
        return pc.match_substring(pc.fill_null(batch.column(S.META), ""), '"url"')

    def match(self, meta: dict) -> tuple[str | None, str | None]:
        """(reason, the entry that matched) for one record's meta, or (None, None)."""
        url = meta.get("url")
        if not isinstance(url, str):
            return None, None
        domain = blocked_domain(host_of(url), self.domains) if self.domains else None
        if domain is not None:
            return "blocked_domain", domain
        folded = url.casefold()
        for entry in self.url_substrings:
            if entry in folded:
                return "blocked_url", entry
        for image in meta.get("images") or []:
            image_url = (image.get("url") or "").casefold() if isinstance(image, dict) else ""
            for entry in self.image_url_substrings:
                if entry in image_url:
                    return "blocked_image_url", entry
        return None, None

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        found = [self.match(load_meta(meta)) for meta in batch.column(S.META).to_pylist()]
        return {
            "reason": pa.array([reason for reason, _ in found], pa.string()),
            "blocked_by": pa.array([entry for _, entry in found], pa.string()),
        }

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return scores["reason"].to_pylist()
