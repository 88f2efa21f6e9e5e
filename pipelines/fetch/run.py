"""``fusionforge fetch``: URL listings -> image files + ``pairs.jsonl`` (what ``shard --format pairs`` reads).

One asyncio loop in this process, as ``rft run`` does: the work is waiting on remote servers, so a
fixed pool of ``concurrency`` workers with one HTTP client keeps thousands of requests moving, and
Ray would add start-up and nothing else. Decoding, hashing and writing an image run in a small thread
pool (Pillow releases the GIL), off the loop.

Rows are split into partitions of ``partition_size`` (the unit of the output parts and of the
completion markers); every decision is appended to its partition's journal as it is made, so a
killed run resumed with ``--resume`` skips finished partitions whole and, inside unfinished ones,
sends a request only for the URLs it has no decision for. Workers take URLs across partition
boundaries, so one slow URL never holds up the next partition.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.ledger import DROPPED, FAILED, KEPT, ledger_summary
from fusionforge.pipelines.core.lifecycle import (
    PARTITION,
    Markers,
    finish_run,
    finished_report,
    prepare_output,
)
from fusionforge.pipelines.core.progress import UNIT, Progress, phase, plan, quiet
from fusionforge.pipelines.core.settings import flat_config
from fusionforge.pipelines.fetch.config import FetchConfig
from fusionforge.pipelines.fetch.download import Download, Downloader, require_httpx
from fusionforge.pipelines.fetch.journal import JOURNAL_DIR, Journal, journal_path
from fusionforge.pipelines.fetch.listing import (
    Item,
    key_name,
    listing_files,
    listings_fingerprint,
    read_items,
)
from fusionforge.pipelines.fetch.parts import LEDGER, PAIRS, PARTS_DIR, STEP, merge_parts, write_partition
from fusionforge.pipelines.fetch.scheduler import HostScheduler
from fusionforge.pipelines.fetch.store import store_image
from fusionforge.pipelines.readers.base import InputFile

SCRATCH = (PARTS_DIR, JOURNAL_DIR)


def run_fetch(cfg: FetchConfig, progress: Progress = quiet) -> dict[str, Any]:
    """Fetch (or finish fetching) every URL of ``cfg.listings`` into ``cfg.output``; return the report."""
    started = time.monotonic()
    require_httpx()
    out = Path(cfg.output)
    files = listing_files(cfg.listings)
    fingerprint = {"listings": listings_fingerprint(files), "settings": cfg.output_settings()}
    if prepare_output(out, fingerprint, cfg.run.resume, SCRATCH):
        return finished_report(out)
    markers = Markers(str(out), PARTITION)
    stats = asyncio.run(FetchRun(cfg, files, markers, progress).run())
    phase(progress, "merge")
    partitions = list(range(stats.partitions))
    merge_parts(out, partitions)
    report = _report(out, stats, markers.read_all(partitions), time.monotonic() - started)
    return finish_run(out, report, flat_config(cfg), SCRATCH)


@dataclass
class RunStats:
    """What this run did (a resumed run counts only its own requests)."""

    partitions: int = 0
    skipped_partitions: int = 0
    urls: int = 0  # decided by this run
    attempts: int = 0  # HTTP attempts (retries included; redirects followed inside one attempt)
    retries: dict[str, int] = field(default_factory=dict)
    bytes_downloaded: int = 0
    seconds: float = 0.0


@dataclass
class _Open:
    """An unfinished partition: its journal, and its row count once the reading has passed it."""

    journal: Journal
    size: int | None = None


class FetchRun:
    """One run's loop: a producer reading the listings, ``concurrency`` workers, the partitions' bookkeeping."""

    def __init__(self, cfg: FetchConfig, files: list[InputFile], markers: Markers, progress: Progress) -> None:
        self.cfg = cfg
        self.files = files
        self.markers = markers
        self.out = markers.out_dir
        self.progress = progress
        self.stats = RunStats()
        self.open: dict[int, _Open] = {}

    async def run(self) -> RunStats:
        started = time.monotonic()
        self.scheduler: HostScheduler[Item] = HostScheduler(self.cfg.per_host, max(1024, 16 * self.cfg.concurrency))
        self.downloader = Downloader(self.cfg, self.scheduler.pause)
        self.pool = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="fetch-store")
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._produce())
                for worker in range(self.cfg.concurrency):
                    tasks.create_task(self._work(worker))
        except BaseExceptionGroup as group:
            raise _first(group) from None  # the error itself (a BadRecord under --strict), not a group
        finally:
            await self.downloader.aclose()
            self.pool.shutdown(wait=True)
            for part in self.open.values():
                part.journal.close()
        self.stats.seconds = time.monotonic() - started
        return self.stats

    async def _produce(self) -> None:
        """Queue every undecided URL of every unfinished partition, in listing order."""
        size = self.cfg.partition_size
        current, rows = -1, 0
        try:
            for item in read_items(self.files, self.cfg):
                partition = item.key // size
                if partition != current:
                    self._passed(current, rows)
                    current, rows = partition, 0
                    self._enter(partition)
                rows += 1
                part = self.open.get(partition)
                if part is None or item.key in part.journal.entries:
                    continue  # a finished partition, or a URL an earlier run decided
                if item.reason is not None:
                    self._decide(item, _entry(item, status=FAILED if item.failed else DROPPED, reason=item.reason))
                else:
                    await self.scheduler.put(item.host, item)
            self._passed(current, rows)
            plan(self.progress, self.stats.partitions, self.stats.partitions - len(self.open))
        finally:
            self.scheduler.close()

    def _enter(self, partition: int) -> None:
        self.stats.partitions = partition + 1
        if self.markers.path(partition).exists():
            self.stats.skipped_partitions += 1
        else:
            self.open[partition] = _Open(Journal(journal_path(self.out, partition)))

    def _passed(self, partition: int, rows: int) -> None:
        """The reading has passed ``partition``: its row count is known, and it may be complete already."""
        if partition in self.open:
            self.open[partition].size = rows
            self._finish_if_complete(partition)

    async def _work(self, worker: int) -> None:
        loop = asyncio.get_running_loop()
        while (taken := await self.scheduler.take()) is not None:
            host, item = taken
            try:
                download = await self.downloader.fetch(item.url, host, worker)
            finally:
                self.scheduler.done(host)
            self.stats.attempts += download.attempts
            self.stats.bytes_downloaded += download.bytes_read
            for kind, count in download.retries.items():
                self.stats.retries[kind] = self.stats.retries.get(kind, 0) + count
            entry = await loop.run_in_executor(self.pool, self._settle, item, download)
            self._decide(item, entry)

    def _settle(self, item: Item, download: Download) -> dict[str, Any]:
        """The decision on one downloaded URL: its image file written, or why not (runs in the thread pool)."""
        facts = {"http_status": download.http_status, "bytes": download.bytes_read}
        if download.reason is not None:
            status = FAILED if download.failed else DROPPED
            return _entry(item, status=status, reason=f"fetch:{download.reason}: {download.detail}", **facts)
        partition = item.key // self.cfg.partition_size
        try:
            stored = store_image(download.data, self.out, partition, key_name(item.key), self.cfg.max_pixels)
        except BadMedia as exc:
            return _entry(item, status=DROPPED, reason=f"fetch:{exc.reason}: {exc.detail}", **facts)
        fields = dict(item.fields)
        pair = {"id": key_name(item.key), "image": stored.path, "caption": fields.pop("caption"), "url": item.url}
        pair.update(fields)
        pair.update(width=stored.width, height=stored.height, sha256=stored.sha256)
        return _entry(item, status=KEPT, reason=None, pair=pair, **facts)

    def _decide(self, item: Item, entry: dict[str, Any]) -> None:
        partition = item.key // self.cfg.partition_size
        self.open[partition].journal.add(entry)
        self.stats.urls += 1
        self._finish_if_complete(partition)

    def _finish_if_complete(self, partition: int) -> None:
        part = self.open[partition]
        if part.size is None or len(part.journal.entries) < part.size:
            return
        summary = write_partition(self.out, partition, list(part.journal.entries.values()))
        self.markers.mark(summary, partition)
        part.journal.remove()
        del self.open[partition]
        self.progress(UNIT, summary)


def _entry(item: Item, *, status: str, reason: str | None, pair: dict | None = None, **facts: Any) -> dict[str, Any]:
    """A journal line: everything the partition's pairs and ledger parts need about one row."""
    return {
        "key": item.key,
        "id": f"{item.file.source}/{key_name(item.key)}",
        "source": item.file.source,
        "file": item.file.path,
        "position": item.position,
        "url": item.url,
        "status": status,
        "reason": reason,
        "http_status": facts.get("http_status"),
        "bytes": facts.get("bytes", 0),
        "pair": pair,
    }


def _first(group: BaseExceptionGroup) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _report(out: Path, stats: RunStats, summaries: list[dict[str, Any] | None], seconds: float) -> dict[str, Any]:
    ledger = ledger_summary(out / LEDGER)
    done = [s for s in summaries if s]
    return {
        "step": STEP,
        "inputs": ledger["inputs"],
        "kept": ledger[KEPT],
        "dropped": ledger[DROPPED],
        "failed": ledger[FAILED],
        "reasons": ledger["reasons"],
        "reasons_by_source": ledger["reasons_by_source"],
        "pairs": PAIRS,
        "image_bytes": sum(s["image_bytes"] for s in done),
        "partitions": stats.partitions,
        "skipped_partitions": stats.skipped_partitions,
        "urls_this_run": stats.urls,
        "attempts": stats.attempts,
        "retries": dict(sorted(stats.retries.items())),
        "bytes_downloaded": stats.bytes_downloaded,
        "fetch_seconds": round(stats.seconds, 3),
        "urls_per_s": round(stats.urls / stats.seconds, 1) if stats.seconds > 0 else 0.0,
        "seconds": round(seconds, 3),
    }
