"""The per-record SFT stages: parse + vision policy, validation + tokens, decontamination.

They run on Ray Data (or in-process) over batches of input rows; each adds namespaced columns
and a ``drop_reason`` or ``error`` and never removes a row. Validation and decontamination are
stateful (a tokenizer, an n-gram index): Ray runs them as actor pools that load once.
"""

from __future__ import annotations

import json

import pyarrow as pa

from fusionforge.mixers.sft import schema as C
from fusionforge.mixers.sft.decontaminate import chat_eval_index
from fusionforge.mixers.sft.parts import ROW
from fusionforge.mixers.sft.readers import parse_row
from fusionforge.mixers.sft.tokens import TokenCounter
from fusionforge.mixers.sft.validate import tool_schema_mappings, validate
from fusionforge.mixers.sft.vision import DEFAULT_PLACEHOLDERS, VisionScanner, conversation_traces, strip_conversation
from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import BadRecord
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, ScoringStage, Stage, add_drop_reasons, add_errors, set_column

PARSE = "sft_parse_v1"
VALIDATE = "sft_validate_v2"  # v2: tool schemas mapped to JSON Schema first (lenient dialect, the default)
DECONTAMINATE = "sft_decontaminate_v1"
CONVERSATION = S.stage_column(PARSE, "conversation")
USER_TEXT = S.stage_column(PARSE, "user_text")
HASH = S.stage_column(PARSE, "hash")
TOKENS = S.stage_column(VALIDATE, "tokens")
TOOL_CALLS = S.stage_column(VALIDATE, "tool_calls")
SCHEMA_MAPPINGS = S.stage_column(VALIDATE, "schema_mappings")


@register
class SftParse(Stage):
    """Input row -> canonical conversation; vision content is rejected, or stripped and counted."""

    name = PARSE
    resources = Resources(batch_size=512)

    def __init__(
        self, strip_vision: bool = False, placeholders: tuple[str, ...] = DEFAULT_PLACEHOLDERS, strict: bool = False
    ) -> None:
        self.strip_vision = strip_vision
        self.scanner = VisionScanner(placeholders)
        self.strict = strict

    def __call__(self, batch: pa.Table) -> pa.Table:
        out: dict[str, list] = {k: [] for k in ("conversation", "user_text", "hash", "vision_parts", "stripped")}
        reasons, errors = [], []
        for raw, error, where in zip(batch.column(ROW).to_pylist(), batch.column(S.ERROR).to_pylist(), _where(batch)):
            values, reason, problem = self._one(raw, where) if error is None else ((None,) * 5, None, None)
            for key, value in zip(out, values):
                out[key].append(value)
            reasons.append(f"{self.name}:{reason}" if reason else None)
            errors.append(f"{self.name}:{problem}" if problem else None)
        types = {
            "conversation": pa.large_string(),
            "user_text": pa.large_string(),
            "hash": pa.string(),
            "vision_parts": pa.int64(),
            "stripped": pa.int64(),
        }
        for key, values in out.items():
            batch = set_column(batch, S.stage_column(self.name, key), pa.array(values, types[key]))
        batch = add_errors(batch, pa.array(errors, pa.string()))
        return add_drop_reasons(batch, pa.array(reasons, pa.string()))

    def _one(self, raw: str, where: str) -> tuple[tuple, str | None, str | None]:
        try:
            conv, media = parse_row(json.loads(raw))
        except BadRecord as exc:
            if self.strict:
                raise BadRecord(exc.reason, where=where) from exc
            return (None,) * 5, None, exc.reason
        found = media + conversation_traces(conv, self.scanner)
        reason, stripped = None, 0
        if found and self.strip_vision:
            stripped = len(media) + strip_conversation(conv, self.scanner)
            conv.meta["vision_stripped"] = stripped
            left = conversation_traces(conv, self.scanner)  # in names, which are not rewritten
            if left:
                reason = f"vision_content: {len(left)} vision part(s) that cannot be stripped: {'; '.join(left[:3])}"
        elif found:
            shown = "; ".join(found[:3]) + (f"; +{len(found) - 3} more" if len(found) > 3 else "")
            reason = f"vision_content: {len(found)} vision part(s): {shown}"
        user_text = "\n".join(conv.texts(("user",)))
        return (C.dumps(conv), user_text, C.conversation_hash(conv), len(found), stripped), reason, None


def _where(batch: pa.Table) -> list[str]:
    files, positions = batch.column(S.INPUT_FILE).to_pylist(), batch.column(S.INPUT_POSITION).to_pylist()
    return [f"{f}:{p}" for f, p in zip(files, positions)]


@register
class SftValidate(ScoringStage):
    """Structure, tool calls against their schemas, and length by the real tokenizer."""

    name = VALIDATE
    stateful = True
    resources = Resources(batch_size=256)

    def __init__(
        self, tokenizer: str | None = None, max_tokens: int | None = None, schema_dialect: str = "lenient"
    ) -> None:
        self.counter = TokenCounter(tokenizer)
        self.max_tokens = max_tokens
        self.schema_dialect = schema_dialect

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        convs = [C.loads(text) for text in batch.column(CONVERSATION).to_pylist()]
        counts = self.counter.count(convs)
        problems = [
            problem or validate(conv, n, self.max_tokens, self.schema_dialect)
            for conv, (n, problem) in zip(convs, counts)
        ]
        lenient = self.schema_dialect == "lenient"
        return {
            "schema_mappings": pa.array(
                [(";".join(tool_schema_mappings(conv)) or None) if lenient else None for conv in convs], pa.string()
            ),
            "tokens": pa.array([n for n, _ in counts], pa.int64()),
            "tool_calls": pa.array([c.tool_call_count for c in convs], pa.int64()),
            "turns": pa.array([len(c.messages) for c in convs], pa.int64()),
            "problem": pa.array(problems, pa.string()),
        }

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return scores["problem"].to_pylist()


@register
class SftDecontaminate(ScoringStage):
    """Drops conversations whose user or assistant turns share an n-gram with an eval sample."""

    name = DECONTAMINATE
    stateful = True
    resources = Resources(batch_size=256)

    def __init__(self, evals: tuple[str, ...] = (), ngram: int = 13, min_tokens: int = 8) -> None:
        self.index = chat_eval_index(evals, ngram, min_tokens)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        matches = [
            self.index.match(C.loads(text).texts(("user", "assistant")))
            for text in batch.column(CONVERSATION).to_pylist()
        ]
        return {
            "eval_set": pa.array([m.eval_set if m else None for m in matches], pa.string()),
            "eval_sample": pa.array([m.eval_sample if m else None for m in matches], pa.string()),
            "ngram": pa.array([m.ngram if m else None for m in matches], pa.large_string()),
        }

    def decide(self, scores: dict[str, pa.Array]) -> list[str | None]:
        return [
            f"ngram_overlap: {s}/{e}" if s else None
            for s, e in zip(scores["eval_set"].to_pylist(), scores["eval_sample"].to_pylist())
        ]


@register
class SftChecks(Stage):
    """Validation then decontamination in one actor: one stateful pool, so a 2-CPU machine keeps a CPU for
    reads and writes (two stateful pools of one CPU each would take both and stall the job)."""

    name = "sft_checks_v2"
    stateful = True
    resources = Resources(batch_size=256)

    def __init__(
        self,
        tokenizer: str | None = None,
        max_tokens: int | None = None,
        evals: tuple[str, ...] = (),
        ngram: int = 13,
        min_tokens: int = 8,
        schema_dialect: str = "lenient",
    ) -> None:
        self.stages: list[Stage] = [SftValidate(tokenizer, max_tokens, schema_dialect)]
        if evals:
            self.stages.append(SftDecontaminate(evals, ngram, min_tokens))

    def __call__(self, batch: pa.Table) -> pa.Table:
        for stage in self.stages:
            batch = stage(batch)
        return batch
