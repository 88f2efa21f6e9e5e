"""N-gram decontamination of SFT conversations: the shared index (``filters/decontam/ngrams.py``) over chats.

Eval files are read here with the structured readers, and a chat row gives its user and assistant
turns; any other row gives its plain text fields, as for pretraining decontamination.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fusionforge.filters.decontam.eval_files import plain_texts, sample_id
from fusionforge.filters.decontam.ngrams import DEFAULT_MIN_TOKENS, DEFAULT_NGRAM, EvalIndex
from fusionforge.mixers.sft.readers import detect_format, parse_row
from fusionforge.pipelines.core.errors import BadRecord
from fusionforge.pipelines.core.io import expand_paths
from fusionforge.pipelines.readers.base import InputFile
from fusionforge.pipelines.readers.plan import STRUCTURED_SUFFIXES
from fusionforge.pipelines.readers.rows import iter_structured


def chat_eval_index(evals: Iterable[str], n: int = DEFAULT_NGRAM, min_tokens: int = DEFAULT_MIN_TOKENS) -> EvalIndex:
    """The n-gram index of eval files whose chats count by their user and assistant turns."""
    return EvalIndex(evals, n, min_tokens, reader=chat_samples)


def chat_samples(path: str, name: str, stats: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(sample id, texts) per eval row; chats give their user and assistant turns."""
    for file in expand_paths(path, STRUCTURED_SUFFIXES):
        for position, row in iter_structured(InputFile(str(file), file.name, name, "text")):
            if isinstance(row, str):
                stats["unreadable"] += 1
                continue
            stats["samples"] += 1
            try:
                detect_format(row)
                texts = parse_row(row)[0].texts(("user", "assistant"))
            except BadRecord:
                texts = plain_texts(row)
            yield sample_id(row, Path(file), position), texts
