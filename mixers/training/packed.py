"""A ``pack`` output opened for reading: its settings, the tokenizer check, and the records its plan names.

The plan only holds numbers and record coordinates (input shard, row); the records themselves stay
in the input folder. ``RecordReader`` reads a shard's rows from the manifest once and keeps the last
few shards, since consecutive sequences draw from the same shards; media bytes are read later, by
byte range, only for the items a sequence holds.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from fusionforge.mixers.packing.job import PLAN, PackConfig
from fusionforge.mixers.packing.layout import FPS_COLUMN, FRAMES_COLUMN
from fusionforge.mixers.tokens.text import TextCounter
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


class RecordReader:
    """Records of the pack's input by (input shard, row), a few shards' rows kept in memory."""

    def __init__(self, input_folder: str | Path, keep: int = 4) -> None:
        manifest_columns = set(pq.read_schema(Path(input_folder) / "manifest.parquet").names)
        extra = [c for c in (FRAMES_COLUMN, FPS_COLUMN) if c in manifest_columns]
        self.source = ManifestSource(input_folder, columns=[*RECORD_COLUMNS, *extra])
        self.keep = keep
        self._shards: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    def record(self, partition: int, row: int) -> dict[str, Any]:
        if partition not in self._shards:
            self._shards[partition] = [r for t in self.source.read(partition) for r in t.to_pylist()]
            if len(self._shards) > self.keep:
                self._shards.popitem(last=False)
        self._shards.move_to_end(partition)
        return self._shards[partition][row]
