"""The settings of a fetch run (``fusionforge fetch``), checked before any request is sent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from fusionforge.pipelines.core.bounds import COUNT, NON_NEGATIVE_INT, POSITIVE, check_bounds, within
from fusionforge.pipelines.core.images import DEFAULT_MAX_PIXELS
from fusionforge.pipelines.core.settings import RunSettings
from fusionforge.pipelines.readers.base import DEFAULT_MAX_RECORD_MB

AGENT = "fusionforge"  # the user-agent token an ``X-Robots-Tag: fusionforge: noai`` names
DEFAULT_MAX_BYTES = 32 * 1024**2
_CONTENT_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/(\*|[a-z0-9!#$&^_.+-]+)")


@dataclass(frozen=True)
class FetchConfig:
    """Everything a fetch run needs; see ``fusionforge fetch --help`` for each option."""

    listings: tuple[str, ...]
    output: str
    url_col: str = "url"
    caption_col: str = "caption"
    extra_cols: tuple[str, ...] | None = None  # None: every other column of the listing is carried through
    concurrency: int = within(COUNT, 64)
    per_host: int = within(COUNT, 8)
    timeout_s: float = within(POSITIVE, 20.0)
    retries: int = within(NON_NEGATIVE_INT, 2)
    backoff_s: float = within(POSITIVE, 0.5)  # the first retry's wait (jittered), doubled per retry, capped
    max_bytes: int = within(COUNT, DEFAULT_MAX_BYTES)
    max_pixels: int = within(COUNT, DEFAULT_MAX_PIXELS)
    max_redirects: int = within(NON_NEGATIVE_INT, 5)
    content_types: tuple[str, ...] = ("image/*",)
    ignore_opt_out: bool = False  # the user's responsibility: X-Robots-Tag noai/noimageai/... are then not honoured
    contact: str | None = None  # in the User-Agent, so a site owner can reach whoever runs the crawl
    partition_size: int = within(COUNT, 10_000)
    max_record_mb: float = within(POSITIVE, DEFAULT_MAX_RECORD_MB)
    run: RunSettings = RunSettings()

    def __post_init__(self) -> None:
        bad = [t for t in self.content_types if not _CONTENT_TYPE.fullmatch(t.lower())]
        problems = [
            None if self.listings else "give at least one listing",
            f"--content-type takes 'type/subtype' or 'type/*', not {bad}" if bad else None,
            None if self.content_types else "--content-type: allow at least one content type",
            None if self.url_col else "--url-col must name a column",
            "--url-col and --caption-col must differ" if self.url_col == self.caption_col else None,
            "the contact may not hold line breaks" if self.contact and re.search(r"[\r\n]", self.contact) else None,
        ]
        check_bounds(self, *problems)

    def user_agent(self) -> str:
        """``fusionforge/0.1.0 (+contact)``: names the tool (the token opt-outs may address) and who runs it."""
        try:
            version = metadata.version("fusionforge")
        except metadata.PackageNotFoundError:
            version = "0"
        return f"{AGENT}/{version}" + (f" (+{self.contact})" if self.contact else "")

    def output_settings(self) -> dict[str, Any]:
        """The settings that decide what is kept: a resumed run must share them with the run it continues."""
        keep = (
            "url_col",
            "caption_col",
            "extra_cols",
            "max_bytes",
            "max_pixels",
            "max_redirects",
            "content_types",
            "ignore_opt_out",
            "partition_size",
            "max_record_mb",
        )
        return {name: getattr(self, name) for name in keep}
