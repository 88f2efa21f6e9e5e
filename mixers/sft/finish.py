"""The global phase of ``sft build``: decisions over the whole set, then the outputs, streamed from the parts.

Pass 1 reads the small columns (id, source, fate, user text, content hash, tokens) of every part:
duplicate ids fail, duplicate user turns are dropped (first kept), kept conversations are split by
content hash, and the mixture picks the training copies. Pass 2 streams the parts again and
writes each row where its fate sends it; the ledger gets one row per input record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionforge.mixers.sft import schema as C
from fusionforge.mixers.sft import stages as ST
from fusionforge.mixers.sft.config import BuildConfig
from fusionforge.mixers.sft.dedupe import duplicate_reasons
from fusionforge.mixers.sft.mixture import Mixture, plan_copies, split_of
from fusionforge.mixers.sft.output import SPLITS, SetWriter, check_vision
from fusionforge.mixers.sft.parts import ROW, iter_part_batches, part_paths
from fusionforge.mixers.sft.vision import VisionScanner
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import RunError
from fusionforge.pipelines.core.io import atomic_path
from fusionforge.pipelines.core.ledger import LEDGER_SCHEMA, ledger_rows, ledger_summary

STEP = "sft_build"
DEDUP = "sft_dedup_v1"
MIX = "sft_mix_v1"
EVAL_SET = S.stage_column(ST.DECONTAMINATE, "eval_set")
EVAL_SAMPLE = S.stage_column(ST.DECONTAMINATE, "eval_sample")
NGRAM = S.stage_column(ST.DECONTAMINATE, "ngram")
VISION_PARTS = S.stage_column(ST.PARSE, "vision_parts")
STRIPPED = S.stage_column(ST.PARSE, "stripped")


class Fates:
    """Pass 1: every row's final id, reason, error, split and training copies."""

    def __init__(self, paths: list[Path], cfg: BuildConfig, mixture: Mixture | None) -> None:
        columns = [
            S.ID,
            S.SOURCE,
            S.DROP_REASON,
            S.ERROR,
            ST.USER_TEXT,
            ST.HASH,
            ST.TOKENS,
            ST.TOOL_CALLS,
            ST.SCHEMA_MAPPINGS,
            VISION_PARTS,
            STRIPPED,
        ]
        data: dict[str, list] = {c: [] for c in columns}
        for batch in iter_part_batches(paths, columns):
            for c in columns:
                data[c].extend(batch.column(c).to_pylist())
        self.ids, self.sources = data[S.ID], data[S.SOURCE]
        self.reasons, self.errors = data[S.DROP_REASON], data[S.ERROR]
        self.tokens, self.tool_calls = data[ST.TOKENS], data[ST.TOOL_CALLS]
        self.schema_mappings = data[ST.SCHEMA_MAPPINGS]
        self.vision_parts, self.stripped = data[VISION_PARTS], data[STRIPPED]
        self._fail_duplicate_ids()
        kept = self.kept()
        dups = duplicate_reasons(
            [self.ids[i] for i in kept], [data[ST.USER_TEXT][i] for i in kept], cfg.near_dup_threshold or None, seed=1
        )
        for i, reason in zip(kept, dups):
            self.reasons[i] = f"{DEDUP}:{reason}" if reason else None
        self.dedup = {
            "exact": sum(1 for r in dups if r and r.startswith("exact")),
            "near": sum(1 for r in dups if r and r.startswith("near")),
            "near_threshold": cfg.near_dup_threshold or None,
        }
        self.split = [None] * len(self.ids)
        for i in self.kept():
            self.split[i] = split_of(data[ST.HASH][i], cfg.run.seed, cfg.val_fraction)
        train = [i for i in self.kept() if self.split[i] == "train"]
        copies, self.mixture = plan_copies(
            mixture, [(self.sources[i], self.ids[i], self.tokens[i]) for i in train], cfg.run.seed
        )
        self.copies = [1] * len(self.ids)
        for i, n in zip(train, copies):
            self.copies[i] = n
            if n == 0 and self.sources[i] not in mixture.sources:
                self.reasons[i] = f"{MIX}:not_in_mixture: the mixture gives source {self.sources[i]!r} no tokens"
            elif n == 0:
                self.reasons[i] = f"{MIX}:not_selected: source {self.sources[i]!r} has its token share without it"

    def _fail_duplicate_ids(self) -> None:
        seen: set[str] = set()
        for i, record_id in enumerate(self.ids):
            if record_id in seen:
                self.ids[i] = f"{record_id}#dup{i}"
                self.errors[i] = self.errors[i] or f"{STEP}:duplicate_id: {record_id!r} is used by an earlier record"
            seen.add(self.ids[i])

    def kept(self) -> list[int]:
        return [i for i in range(len(self.ids)) if self.errors[i] is None and self.reasons[i] is None]


def finish_build(out: Path, cfg: BuildConfig, partitions: list, mixture: Mixture | None) -> dict[str, Any]:
    """Write every output and return the report (without timing and run fields)."""
    paths = part_paths(out, partitions)
    fates = Fates(paths, cfg, mixture)
    writer = SetWriter(out, side_files=("rejected", "decontamination"))
    matches: dict[str, int] = {}
    try:
        with atomic_path(out / "ledger.parquet") as tmp, pq.ParquetWriter(tmp, LEDGER_SCHEMA) as ledger:
            _write_rows(paths, fates, writer, ledger, matches)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    scanner = VisionScanner(cfg.vision_placeholders)
    found = check_vision(out, scanner)
    if sum(found.values()):
        for split in SPLITS:
            for suffix in (".jsonl", ".parquet"):
                (out / f"{split}{suffix}").unlink(missing_ok=True)
        raise RunError(f"vision check failed: {found} vision parts in the written set; it was removed")
    report = _report(out, fates, writer.rows, cfg, found)
    report["_matches_by_set"] = matches
    return report


def _write_rows(
    paths: list[Path], fates: Fates, writer: SetWriter, ledger: pq.ParquetWriter, matches: dict[str, int]
) -> None:
    columns = [
        S.ID,
        S.SOURCE,
        S.MODALITY,
        S.INPUT_FILE,
        S.INPUT_POSITION,
        ROW,
        ST.CONVERSATION,
        EVAL_SET,
        EVAL_SAMPLE,
        NGRAM,
    ]
    g = 0
    for batch in iter_part_batches(paths, columns, batch_size=1024):
        n = batch.num_rows
        span = range(g, g + n)
        table = pa.table(
            {
                S.ID: pa.array([fates.ids[i] for i in span], pa.string()),
                S.SOURCE: batch.column(S.SOURCE),
                S.MODALITY: batch.column(S.MODALITY),
                S.INPUT_FILE: batch.column(S.INPUT_FILE),
                S.INPUT_POSITION: batch.column(S.INPUT_POSITION),
                S.DROP_REASON: pa.array([fates.reasons[i] for i in span], pa.string()),
                S.ERROR: pa.array([fates.errors[i] for i in span], pa.string()),
            }
        )
        ledger.write_table(ledger_rows(table, STEP))
        rows, convs = batch.column(ROW).to_pylist(), batch.column(ST.CONVERSATION).to_pylist()
        evals = zip(
            batch.column(EVAL_SET).to_pylist(), batch.column(EVAL_SAMPLE).to_pylist(), batch.column(NGRAM).to_pylist()
        )
        for k, (i, (eval_set, eval_sample, ngram)) in enumerate(zip(span, evals)):
            record_id, source = fates.ids[i], fates.sources[i]
            if eval_set is not None:
                writer.side(
                    "decontamination",
                    {
                        "id": record_id,
                        "source": source,
                        "eval_set": eval_set,
                        "eval_sample": eval_sample,
                        "ngram": ngram,
                    },
                )
                matches[eval_set] = matches.get(eval_set, 0) + 1
            if fates.errors[i] is None and fates.reasons[i] is None:
                row = C.output_row(record_id, source, C.loads(convs[k]))
                writer.write(fates.split[i], row, fates.tokens[i], fates.copies[i])
            else:
                writer.side(
                    "rejected",
                    {
                        "id": record_id,
                        "source": source,
                        "input_file": batch.column(S.INPUT_FILE)[k].as_py(),
                        "input_position": batch.column(S.INPUT_POSITION)[k].as_py(),
                        "status": "failed" if fates.errors[i] else "dropped",
                        "reason": fates.errors[i] or fates.reasons[i],
                        "row": _loads(rows[k]),
                    },
                )
        g += n


def _loads(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


def _mapping_counts(per_row: list[str | None]) -> dict[str, int]:
    """Conversations whose tool schemas took each mapping (``"float->number": 12``), over every input row."""
    counts: dict[str, int] = {}
    for mappings in per_row:
        for mapping in sorted(set(mappings.split(";"))) if mappings else ():
            counts[mapping] = counts.get(mapping, 0) + 1
    return dict(sorted(counts.items()))


def _report(out: Path, fates: Fates, rows: dict[str, int], cfg: BuildConfig, found: dict[str, int]) -> dict[str, Any]:
    ledger = ledger_summary(out / "ledger.parquet")
    kept = fates.kept()
    by_source: dict[str, dict[str, Any]] = {}
    for i, source in enumerate(fates.sources):
        entry = by_source.setdefault(
            source,
            {
                "inputs": 0,
                "kept": 0,
                "train": 0,
                "val": 0,
                "train_rows": 0,
                "train_tokens": 0,
                "val_tokens": 0,
                "with_tool_calls": 0,
                "reasons": {},
            },
        )
        entry["inputs"] += 1
        why = fates.errors[i] or fates.reasons[i]
        if why:
            key = why.split(": ", 1)[0]
            entry["reasons"][key] = entry["reasons"].get(key, 0) + 1
    for i in kept:
        entry = by_source[fates.sources[i]]
        split = fates.split[i]
        entry["kept"] += 1
        entry[split] += 1
        entry[f"{split}_tokens"] += fates.tokens[i] * (fates.copies[i] if split == "train" else 1)
        entry["train_rows"] += fates.copies[i] if split == "train" else 0
        entry["with_tool_calls"] += 1 if fates.tool_calls[i] else 0
    for entry in by_source.values():
        entry["tool_use_share"] = round(entry.pop("with_tool_calls") / entry["kept"], 4) if entry["kept"] else 0.0
    tokens = np.array([fates.tokens[i] for i in kept], dtype=np.int64)
    tool = [i for i in kept if fates.tool_calls[i]]
    rejected_vision = sum(1 for r in fates.reasons if r and r.startswith(f"{ST.PARSE}:vision_content"))
    return {
        "inputs": ledger["inputs"],
        "kept": ledger["kept"],
        "dropped": ledger["dropped"],
        "failed": ledger["failed"],
        "reasons": ledger["reasons"],
        "by_source": by_source,
        "splits": {
            s: {
                "conversations": sum(1 for i in kept if fates.split[i] == s),
                "rows": rows[s],
                "tokens": sum(by_source[src][f"{s}_tokens"] for src in by_source),
            }
            for s in SPLITS
        },
        "val_fraction": cfg.val_fraction,
        "seed": cfg.run.seed,
        "tokens": {
            "tokenizer": cfg.tokenizer,
            "max_tokens": cfg.max_tokens,
            "kept_conversations": len(kept),
            "total": int(tokens.sum()),
            "mean": round(float(tokens.mean()), 1) if len(tokens) else 0.0,
            "p50": int(np.percentile(tokens, 50)) if len(tokens) else 0,
            "p95": int(np.percentile(tokens, 95)) if len(tokens) else 0,
            "max": int(tokens.max()) if len(tokens) else 0,
        },
        "tool_schemas": {
            "dialect": cfg.schema_dialect,
            "mapped": _mapping_counts(fates.schema_mappings),
        },
        "tool_use_share": {
            "conversations": round(len(tool) / len(kept), 4) if kept else 0.0,
            "tokens": round(sum(fates.tokens[i] for i in tool) / max(1, int(tokens.sum())), 4),
        },
        "vision": {
            "policy": "strip" if cfg.strip_vision else "reject",
            "found_in_inputs": sum(n or 0 for n in fates.vision_parts),
            "rejected_conversations": rejected_vision,
            "stripped_conversations": sum(1 for n in fates.stripped if n),
            "stripped_parts": sum(n or 0 for n in fates.stripped),
            "output_vision_parts": sum(found.values()),
            "check": f"{sum(found.values())} vision parts in " + ", ".join(f"{s}.jsonl, {s}.parquet" for s in SPLITS),
        },
        "dedup": fates.dedup,
        "mixture": fates.mixture or None,
        "outputs": {
            "train": ["train.jsonl", "train.parquet"],
            "val": ["val.jsonl", "val.parquet"],
            "rejected": "rejected.jsonl",
            "decontamination": "decontamination.jsonl",
            "ledger": "ledger.parquet",
        },
    }
