"""Writing an SFT set: OpenAI-messages JSONL and Parquet per split, plus side files; then the vision check.

Every file is written under a temporary name and renamed when complete. ``check_vision`` reads
the finished files back and counts vision parts with the same scanner that screened the inputs:
the report's "0 vision parts" is that count, measured on what was written.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fusionforge.mixers.sft.schema import OUTPUT_SCHEMA, parquet_row
from fusionforge.mixers.sft.vision import MEDIA_ROW_FIELDS, VisionScanner, count_in_texts
from fusionforge.pipelines.core.io import atomic_path

SPLITS = ("train", "val")


class SetWriter:
    """``train``/``val`` JSONL + Parquet and named JSONL side files, all committed together on ``close``."""

    def __init__(self, out: Path, side_files: tuple[str, ...] = (), batch_rows: int = 2048) -> None:
        self.out = out
        self._stack = ExitStack()
        self._jsonl: dict[str, IO[str]] = {}
        self._parquet: dict[str, pq.ParquetWriter] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        self._batch_rows = batch_rows
        self.rows = dict.fromkeys(SPLITS, 0)
        for name in (*SPLITS, *side_files):
            tmp = self._stack.enter_context(atomic_path(out / f"{name}.jsonl"))
            self._jsonl[name] = self._stack.enter_context(open(tmp, "w", encoding="utf-8"))  # noqa: SIM115
        for split in SPLITS:
            tmp = self._stack.enter_context(atomic_path(out / f"{split}.parquet"))
            self._parquet[split] = self._stack.enter_context(pq.ParquetWriter(tmp, OUTPUT_SCHEMA))

    def write(self, split: str, row: dict[str, Any], n_tokens: int, copies: int = 1) -> None:
        """``copies`` identical lines (the mixture's repeats) of one conversation."""
        line = json.dumps(row, ensure_ascii=False) + "\n"
        for repeat in range(copies):
            self._jsonl[split].write(line)
            self._pending[split].append(parquet_row(row, n_tokens, repeat))
        self.rows[split] += copies
        if len(self._pending[split]) >= self._batch_rows:
            self._flush(split)

    def side(self, name: str, row: dict[str, Any]) -> None:
        self._jsonl[name].write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    def _flush(self, split: str) -> None:
        if self._pending[split]:
            self._parquet[split].write_table(pa.Table.from_pylist(self._pending[split], schema=OUTPUT_SCHEMA))
            self._pending[split] = []

    def close(self) -> None:
        for split in SPLITS:
            self._flush(split)
        self._stack.close()

    def abort(self) -> None:
        """Leave nothing behind under the final names (temporaries are removed)."""
        self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)


def check_vision(out: Path, scanner: VisionScanner, names: tuple[str, ...] = SPLITS) -> dict[str, int]:
    """Vision parts found in each written split, JSONL and Parquet both (vectorised regex counts over the text)."""
    counts = {}
    for name in names:
        found = 0
        jsonl = out / f"{name}.jsonl"
        if jsonl.exists():
            with open(jsonl, encoding="utf-8") as handle:
                while lines := list(islice(handle, 8192)):
                    found += count_in_texts(pa.array(lines, pa.large_string()), scanner.document_pattern)
                    found += sum(1 for row in map(json.loads, lines) for key in MEDIA_ROW_FIELDS if row.get(key))
        parquet = out / f"{name}.parquet"
        if parquet.exists():
            for batch in pq.ParquetFile(parquet).iter_batches(columns=["messages", "tools", "meta"]):
                messages = pc.list_flatten(batch.column("messages"))
                calls = pc.struct_field(pc.list_flatten(pc.struct_field(messages, "tool_calls")), "function")
                found += count_in_texts(pc.struct_field(messages, "content"), scanner.pattern)
                found += count_in_texts(pc.struct_field(messages, "name"), scanner.pattern)
                found += count_in_texts(pc.struct_field(calls, "arguments"), scanner.escaped_pattern)
                found += count_in_texts(batch.column("tools"), scanner.document_pattern)
                found += count_in_texts(batch.column("meta"), scanner.document_pattern)
        counts[name] = found
    return counts
