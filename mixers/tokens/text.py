"""Text-token counting with a real tokenizer from a local path, or a clearly labelled estimate.

A tokenizer is given by path, never downloaded: a Hugging Face ``tokenizer.json`` (or a folder
holding one), or a tiktoken BPE file (``name.tiktoken`` / ``tiktoken.model``; special tokens are
read from a ``tokenizer_config.json`` beside it when there is one). Without a tokenizer the count is
``ceil(characters / 4)`` and every place that shows it says ``estimate``. Counting is batched
(``encode_batch_fast`` of the fast tokenizers, ``encode_ordinary_batch`` of tiktoken).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from fusionforge.pipelines.core import schema as S
from fusionforge.pipelines.core.errors import ConfigError, MissingDependency
from fusionforge.pipelines.core.registry import register
from fusionforge.pipelines.core.stage import Resources, Stage, set_column

CHARS_PER_TOKEN = 4
ESTIMATE = f"estimate:chars/{CHARS_PER_TOKEN}"
# The pre-tokenisation regex of cl100k-style BPE files (the one most tiktoken files are made with).
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)


class TextCounter:
    """Counts (and, with a real tokenizer, encodes) text; ``method`` says which.

    Args:
        path: a ``tokenizer.json``, a folder with one, or a tiktoken BPE file; None for the estimate.
        pattern: the pre-tokenisation regex of a tiktoken file (default: cl100k's).
    """

    def __init__(self, path: str | Path | None = None, pattern: str | None = None) -> None:
        self.path = str(path) if path else None
        self._hf = self._tiktoken = None
        self.eos_token: str | None = None
        self.fingerprint: str | None = None  # sha256 of what decides the ids; None for the estimate
        if self.path is None:
            self.method = ESTIMATE
            return
        source = Path(self.path)
        if not source.exists():
            raise ConfigError(
                f"tokenizer {self.path} does not exist; give a tokenizer.json, a folder or a tiktoken file"
            )
        if source.is_dir():
            if (source / "tokenizer.json").exists():
                source = source / "tokenizer.json"
            else:
                bpe = sorted([*source.glob("*.tiktoken"), *source.glob("tiktoken.model")])
                if not bpe:
                    raise ConfigError(f"{source} holds neither tokenizer.json nor a tiktoken file")
                source = bpe[0]
        config = _read_config(source.parent / "tokenizer_config.json")
        self.eos_token = _content(config.get("eos_token"))
        if source.suffix == ".json":
            self._load_hf(source)
        else:
            self._load_tiktoken(source, pattern or CL100K_PATTERN, config)
        self.method = f"tokenizer:{source.name}"
        self.fingerprint = _fingerprint(source, config, pattern if self._tiktoken is not None else None)

    def _load_hf(self, source: Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependency("tokenizers", "local-model") from exc
        try:
            self._hf = Tokenizer.from_file(str(source))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ConfigError(f"cannot load tokenizer {source}: {exc}") from exc

    def _load_tiktoken(self, source: Path, pattern: str, config: dict[str, Any]) -> None:
        try:
            import tiktoken
            from tiktoken.load import load_tiktoken_bpe
        except ImportError as exc:
            raise MissingDependency("tiktoken", "local-model") from exc
        try:
            ranks = load_tiktoken_bpe(str(source))
        except Exception as exc:  # a file that is not base64-token/rank lines
            raise ConfigError(f"{source} is not a tiktoken BPE file (lines of 'base64 rank'): {exc}") from exc
        specials = {_content(v): int(k) for k, v in config.get("added_tokens_decoder", {}).items()}
        self._tiktoken = tiktoken.Encoding(
            source.stem, pat_str=pattern, mergeable_ranks=ranks, special_tokens={k: v for k, v in specials.items() if k}
        )

    @property
    def estimated(self) -> bool:
        return self._hf is None and self._tiktoken is None

    def count_batch(self, texts: list[str | None]) -> list[int]:
        """Tokens of each text (no special tokens added); None counts as 0."""
        if self.estimated:
            return [math.ceil(len(t) / CHARS_PER_TOKEN) if t else 0 for t in texts]
        return [len(ids) for ids in self.encode_batch(texts)]

    def encode_batch(self, texts: list[str | None]) -> list[list[int]]:
        """Token ids of each text; only with a real tokenizer."""
        if self.estimated:
            raise ConfigError("token ids need a real tokenizer: pass --tokenizer PATH")
        values = [t or "" for t in texts]
        if self._hf is not None:
            # ``encode_batch_fast``: the same ids without the character offsets, which nothing here reads
            return [e.ids for e in self._hf.encode_batch_fast(values, add_special_tokens=False)]
        return self._tiktoken.encode_ordinary_batch(values)

    def encode_markup(self, text: str) -> list[int]:
        """Ids of chat markup that may hold special tokens (``<|media_begin|>image``)."""
        if self._hf is not None:
            return self._hf.encode(text, add_special_tokens=False).ids
        if self._tiktoken is not None:
            return self._tiktoken.encode(text, allowed_special="all")
        raise ConfigError("token ids need a real tokenizer: pass --tokenizer PATH")

    def decode(self, ids: list[int]) -> str:
        """Text of token ids, special tokens written out (``<|endoftext|>``)."""
        if self._hf is not None:
            return self._hf.decode(ids, skip_special_tokens=False)
        if self._tiktoken is not None:
            return self._tiktoken.decode(ids)
        raise ConfigError("decoding needs a real tokenizer: pass --tokenizer PATH")

    def token_id(self, token: str) -> int | None:
        """The id of one (special) token, or None when the tokenizer lacks it."""
        if self._hf is not None:
            return self._hf.token_to_id(token)
        if self._tiktoken is not None:
            return self._tiktoken._special_tokens.get(token)
        return None

    @property
    def eos_id(self) -> int | None:
        return self.token_id(self.eos_token) if self.eos_token else None


def _fingerprint(source: Path, config: dict[str, Any], pattern: str | None) -> str:
    """What decides the ids (the vocabulary file, the special tokens, a tiktoken pattern), hashed.

    ``pack`` records it so that a training loader can refuse a different tokenizer: the plan's token
    counts, and so its sequence boundaries, hold only for the tokenizer that made them.
    """
    digest = hashlib.sha256(source.read_bytes())
    digest.update(json.dumps(config, sort_keys=True).encode())
    digest.update((pattern or "").encode())
    return digest.hexdigest()


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc


def _content(value: Any) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def record_texts(modality: str, text: str | None, segments: list[dict] | None) -> list[str]:
    """The text parts of a record in order: the segments' texts for an interleaved document, else the text."""
    if modality == S.Modality.INTERLEAVED and segments:
        return [s["text"] or "" for s in segments if s["type"] == "text"]
    return [text] if text else []


@register
class TextTokens(Stage):
    """``mixers_text_tokens_v1``: ``text_tokens`` per record, plus the count of each text part and the method.

    Interleaved documents are counted part by part (the packer places parts separately), so their
    ``text_tokens`` is the sum of the parts' counts. ``method`` is ``estimate:chars/4`` without a tokenizer.
    """

    name: ClassVar[str] = "mixers_text_tokens_v1"
    resources: ClassVar[Resources] = Resources(batch_size=512)
    stateful: ClassVar[bool] = True

    def __init__(self, tokenizer: str | None = None, pattern: str | None = None) -> None:
        self.counter = TextCounter(tokenizer, pattern)

    def __call__(self, batch: pa.Table) -> pa.Table:
        modalities = batch.column(S.MODALITY).to_pylist()
        texts = batch.column(S.TEXT).to_pylist()
        segments = batch.column(S.SEGMENTS).to_pylist()
        parts = [record_texts(m, t, s) for m, t, s in zip(modalities, texts, segments)]
        flat = self.counter.count_batch([p for record in parts for p in record])
        per_part, start = [], 0
        for record in parts:
            per_part.append(flat[start : start + len(record)])
            start += len(record)
        batch = set_column(batch, S.TEXT_TOKENS, pa.array([sum(p) for p in per_part], pa.int64()))
        batch = set_column(batch, S.stage_column(self.name, "part_tokens"), pa.array(per_part, pa.list_(pa.int64())))
        return set_column(
            batch, S.stage_column(self.name, "method"), pa.array([self.counter.method] * batch.num_rows, pa.string())
        )
