"""The materialized shards of a pack output (``pack --materialize``), read one sequence at a time.

A sample's ids, roles and media bytes are as ``pack`` wrote them, so no record is re-tokenized and
the input shards need not be there. A shard's members are indexed (one pass over its tar headers,
which skips the data) the first time a sequence in it is read, and a few indexes are kept; each
member is then one ranged read. Shards written before roles were stored cannot give labels: they
are reported as absent, and the loader reads the input shards instead.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from fusionforge.mixers.training.builder import SequenceParts
from fusionforge.mixers.training.media import MediaInput
from fusionforge.mixers.training.packed import PackedRun
from fusionforge.pipelines.core.errors import ConfigError
from fusionforge.pipelines.core.io import read_range

IDS, ROLES, HEADER = "input_ids.npy", "roles.npy", "json"


def parts_from_members(members: dict[str, Any]) -> SequenceParts:
    """``SequenceParts`` of one materialized sample, given its members by part name (``json``, ``000.jpg``, ...)."""
    header = members[HEADER]
    header = json.loads(header) if isinstance(header, bytes | str) else header
    n = header["tokens"]
    ids = _array(members[IDS])[:n].astype(np.int64)
    roles = _array(members[ROLES])[:n].astype(np.int64)
    media = []
    for segment in header["segments"]:
        start, stop = segment["offset"], segment["offset"] + segment["length"]
        spans = [span for span in header["media"] if start <= span["offset"] < stop]
        media.append([_media_input(span, members) for span in spans])
    return SequenceParts(
        header["sequence_id"], header["window"], ids, roles, header["cu_seqlens"], header["segments"], media
    )


def _array(value: Any) -> np.ndarray:
    return np.load(io.BytesIO(value)) if isinstance(value, bytes) else np.asarray(value)


def _media_input(span: dict[str, Any], members: dict[str, Any]) -> MediaInput:
    data = members[span["member"].split(".", 1)[1]]
    sampling = (int(span["frames"]), span["fps"]) if span["kind"] == "video" else (0, None)
    return MediaInput(span, {"bytes": data, "format": span["format"]}, sampling)


class MaterializedShards:
    """``packed/packed-NNNNNN.tar`` of a pack output: sequence ``s`` is in shard ``s // samples_per_shard``."""

    def __init__(self, folder: Path, samples_per_shard: int, keep: int = 4) -> None:
        self.folder, self.samples_per_shard, self.keep = folder, samples_per_shard, keep
        self._indexes: OrderedDict[int, dict[str, dict[str, tuple[int, int]]]] = OrderedDict()

    @classmethod
    def find(cls, run: PackedRun) -> MaterializedShards | None:
        """The run's materialized shards, or None when it has none (or only shards without roles)."""
        if not run.report.get("materialized"):
            return None
        shards = cls(run.folder / "packed", run.config.samples_per_shard)
        first = shards._index(0)
        return shards if first and ROLES in next(iter(first.values())) else None

    def parts(self, sequence_id: int) -> SequenceParts:
        return parts_from_members(self.members(sequence_id))

    def members(self, sequence_id: int) -> dict[str, bytes]:
        """Every member of sequence ``sequence_id``'s sample, by part name."""
        number = sequence_id // self.samples_per_shard
        found = self._index(number).get(f"{sequence_id:09d}")
        if found is None:
            raise ConfigError(f"{self._path(number)} holds no sequence {sequence_id}; was it written by this pack?")
        path = str(self._path(number))
        return {part: read_range(path, offset, size) for part, (offset, size) in found.items()}

    def _path(self, number: int) -> Path:
        return self.folder / f"packed-{number:06d}.tar"

    def _index(self, number: int) -> dict[str, dict[str, tuple[int, int]]]:
        """Sample key -> part name -> (data offset, size) of one shard (kept for the next few reads)."""
        if number not in self._indexes:
            index: dict[str, dict[str, tuple[int, int]]] = {}
            if self._path(number).exists():
                with tarfile.open(self._path(number)) as tar:
                    for member in tar:
                        key, part = member.name.split(".", 1)
                        index.setdefault(key, {})[part] = (member.offset_data, member.size)
            self._indexes[number] = index
            if len(self._indexes) > self.keep:
                self._indexes.popitem(last=False)
        self._indexes.move_to_end(number)
        return self._indexes[number]
