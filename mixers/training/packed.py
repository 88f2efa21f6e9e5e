"""A ``pack`` output opened for reading: its settings, the tokenizer check, and the records its plan names.

The plan only holds numbers and record coordinates (input shard, row); the records themselves stay
in the input folder. ``RecordReader`` reads the manifest by row group (only the columns a record
needs) and keeps the last few groups, converting their rows a block at a time; media bytes are read
later, by byte range, only for the items a sequence holds. ``InputParts`` turns a plan row into
``SequenceParts`` from those records (the other source, the materialized shards: ``materialized``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.mixers.packing.job import PLAN, PackConfig
from fusionforge.mixers.packing.layout import FPS_COLUMN, FRAMES_COLUMN, frame_sampling
from fusionforge.mixers.packing.materialize import Encoder
from fusionforge.mixers.tokens.text import TextCounter
from fusionforge.mixers.training.builder import SequenceParts, where
from fusionforge.mixers.training.media import MediaInput, MediaMismatch
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.config import load_yaml
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.transform import ManifestSource

RECORD_COLUMNS = (S.ID, S.SOURCE, S.MODALITY, S.TEXT, S.SEGMENTS, S.MEDIA)


@dataclass(frozen=True)
class PackedRun:
    """What a finished ``pack`` wrote: its folder, its settings and its report."""

    folder: Path
    config: PackConfig
    report: dict[str, Any]

    @classmethod
    def open(cls, folder: str | Path) -> PackedRun:
        folder = Path(folder)
        if not (folder / "_SUCCESS").exists() or not (folder / PLAN).exists():
            raise ConfigError(f"{folder} is not a finished pack output (no _SUCCESS or {PLAN}); run fusionforge pack")
        settings = load_yaml(folder / "config.yaml")
        known = {f.name for f in fields(PackConfig)}
        config = PackConfig(**{k: v for k, v in settings.items() if k in known})
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        return cls(folder, config, report)

    @property
    def plan_path(self) -> Path:
        return self.folder / PLAN

    def check_tokenizer(self, tokenizer: str | Path | None) -> str:
        """The tokenizer to use: the one given, refused unless it is the one ``pack --tokenizer`` counted with."""
        if not self.config.tokenizer:
            raise ConfigError(
                f"{self.folder} was packed without --tokenizer: its text token counts are estimates, so no "
                "tokenizer reproduces its sequences; run pack again with --tokenizer PATH"
            )
        path = str(tokenizer or self.config.tokenizer)
        given = TextCounter(path, self.config.tiktoken_pattern).fingerprint
        recorded = self.report.get("tokenizer_fingerprint")
        if recorded is None:  # a pack from before the fingerprint was recorded: compare with the file it named
            recorded = TextCounter(self.config.tokenizer, self.config.tiktoken_pattern).fingerprint
        if given != recorded:
            raise ConfigError(
                f"tokenizer {path} is not the one {self.folder} was packed with ({self.config.tokenizer}, "
                f"fingerprint {recorded[:12]}, given {given[:12]}): the plan's token counts and sequence "
                "boundaries hold only for that tokenizer; pass the same one, or pack again with yours"
            )
        return path


class PlanRows:
    """The rows of ``plan.parquet`` as dicts, converted a block at a time (readers take them nearly in order).

    One conversion per row costs more than the tokenizer's work on a short text. A row's dict is
    shared between calls: do not change it.
    """

    def __init__(self, plan_path: str | Path, block: int = 256, keep: int = 4) -> None:
        self.table = pq.read_table(plan_path)  # row i is sequence i (pack numbers them in order)
        self.block, self.keep = block, keep
        self._blocks: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    def row(self, sequence_id: int) -> dict[str, Any]:
        number, at = divmod(sequence_id, self.block)
        if number not in self._blocks:
            self._blocks[number] = self.table.slice(number * self.block, self.block).to_pylist()
            if len(self._blocks) > self.keep:
                self._blocks.popitem(last=False)
        self._blocks.move_to_end(number)
        return self._blocks[number][at]


class RecordReader:
    """Records of the pack's input by (input shard, row): manifest row groups read once, a few kept in memory.

    A plan draws its records from all over the input, so the records of a sequence are taken from
    their row groups together (one conversion per group, not per record).
    """

    def __init__(self, input_folder: str | Path, keep: int = 8) -> None:
        self.source = ManifestSource(input_folder)
        self.parquet = pq.ParquetFile(self.source.path)
        names = set(self.parquet.schema_arrow.names)
        self.columns = [*RECORD_COLUMNS, *(c for c in (FRAMES_COLUMN, FPS_COLUMN) if c in names)]
        sizes = [self.parquet.metadata.row_group(g).num_rows for g in range(self.parquet.metadata.num_row_groups)]
        self.group_starts = np.cumsum([0, *sizes])
        self.keep = keep
        self._groups: OrderedDict[int, pa.Table] = OrderedDict()

    def record(self, partition: int, row: int) -> dict[str, Any]:
        return self.records([(partition, row)])[0]

    def records(self, places: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """The records at (input shard, row) ``places``, in order."""
        at = np.array([self.source.row_range(partition)[0] + row for partition, row in places], np.int64)
        groups = np.searchsorted(self.group_starts, at, side="right") - 1
        out: list[dict[str, Any]] = [{}] * len(places)
        for group in np.unique(groups):
            chosen = np.flatnonzero(groups == group)
            rows = self._group(int(group)).take(at[chosen] - self.group_starts[group]).to_pylist()
            for i, record in zip(chosen, rows):
                out[i] = self._absolute_uris(record)
        return out

    def _group(self, group: int) -> pa.Table:
        if group not in self._groups:
            self._groups[group] = self.parquet.read_row_group(group, columns=self.columns)
            if len(self._groups) > self.keep:
                self._groups.popitem(last=False)
        self._groups.move_to_end(group)
        return self._groups[group]

    def _absolute_uris(self, record: dict[str, Any]) -> dict[str, Any]:
        for item in record[S.MEDIA] or []:  # media URIs are relative to the input folder
            if item["uri"] and not Path(item["uri"]).is_absolute():
                item["uri"] = str(self.source.folder / item["uri"])
        return record


class InputParts:
    """``SequenceParts`` of plan rows from the pack's input: each record read and re-tokenized as pack counted it."""

    def __init__(self, input_folder: str | Path, encoder: Encoder) -> None:
        self.reader = RecordReader(input_folder)
        self.encoder = encoder

    def parts(self, row: dict[str, Any]) -> SequenceParts:
        n = row["tokens"]
        ids, roles = np.zeros(n, np.int64), np.zeros(n, np.int64)
        places = list(dict.fromkeys((s["partition"], s["row"]) for s in row["segments"]))
        records = dict(zip(places, self.reader.records(places)))
        encoded = {
            key: (np.asarray(record_ids, np.int64), np.asarray(record_roles, np.int64))
            for key, (record_ids, record_roles) in zip(records, self.encoder.encode_many(list(records.values())))
        }
        media = []
        for segment in row["segments"]:
            named = where(row["sequence_id"], segment)
            key = (segment["partition"], segment["row"])
            record = records[key]
            if record["id"] != segment["sample_id"]:
                raise ConfigError(f"{named}: the input holds {record['id']} there; was the input changed after pack?")
            start, length, at = segment["sample_start"], segment["length"], segment["offset"]
            seg_ids, seg_roles = (a[start : start + length] for a in encoded[key])
            if len(seg_ids) != length:
                raise MediaMismatch(f"{named}: rebuilt as {len(seg_ids)} tokens, the plan holds {length}")
            ids[at : at + length], roles[at : at + length] = seg_ids, seg_roles
            media.append([_media_input(record, span) for span in segment["media"]])
        return SequenceParts(row["sequence_id"], row["window"], ids, roles, row["cu_seqlens"], row["segments"], media)


def _media_input(record: dict[str, Any], span: dict[str, Any]) -> MediaInput:
    item = record[S.MEDIA][span["media_index"]]
    return MediaInput(span, item, frame_sampling(record, item) if span["kind"] == "video" else (0, None))
