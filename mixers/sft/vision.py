"""The zero-vision guarantee: find (and, when asked, strip) every trace of pixels in a chat sample.

A sample carries vision when a turn has an image/video/audio content part, the row names media
files (LLaVA-style ``image``/``images`` fields), or any text holds a data URL, a base64-encoded
image, or a vision placeholder token (``<image>``, ``<|image_pad|>``, ``<|media_pad|>``, ...;
configurable). ``count_vision_parts`` scans any JSON value the same way: the final check of every
output runs it over what was written, so "0 vision parts" is measured, not assumed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fusionforge.mixers.sft.schema import Conversation

# Placeholders of the common VLM chat formats: LLaVA, Qwen2-VL/2.5-VL, Kimi-VL/K2.5, Llama 3.2 Vision,
# InternVL, Gemma 3, Pixtral, GLM-4V, plus video and audio counterparts.
DEFAULT_PLACEHOLDERS = (
    "<image>",
    "<video>",
    "<audio>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|media_start|>",
    "<|media_content|>",
    "<|media_pad|>",
    "<|media_end|>",
    "<|image|>",
    "<|video|>",
    "<|audio|>",
    "<|audio_pad|>",
    "<IMG_CONTEXT>",
    "<start_of_image>",
    "<image_soft_token>",
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "[IMG]",
    "[IMG_BREAK]",
    "[IMG_END]",
)
# Content-part types (OpenAI, Anthropic-style and common dataset variants) that carry media.
MEDIA_PART_TYPES = frozenset(
    {
        "image",
        "image_url",
        "input_image",
        "video",
        "video_url",
        "input_video",
        "audio",
        "audio_url",
        "input_audio",
        "file",
        "input_file",
    }
)
TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
# Row-level fields that name media files for a sample (LLaVA, LLaMA-Factory multimodal formats).
MEDIA_ROW_FIELDS = ("image", "images", "video", "videos", "audio", "audios")

_DATA_URL = r"data:(?:image|video|audio)/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=]*"
# base64 of PNG, JPEG, GIF, WebP (RIFF) and MP4 (ftyp box) headers, followed by a long run of base64
_BASE64_MEDIA = r"(?:iVBORw0KGgo|/9j/|R0lGOD|UklGR|AAAA[A-Za-z0-9+/]{2}ZnR5c)[A-Za-z0-9+/]{60,}={0,2}"
_NUMBERED = r"<\|image_\d+\|>|<image_\d+>"  # Phi-3-vision style numbered image slots


class VisionScanner:
    """Finds vision traces in text; ``placeholders`` replaces the default token list.

    ``pattern`` is the regex for plain text; ``escaped_pattern`` also finds placeholders inside
    JSON-encoded strings; ``document_pattern`` adds media content parts (``"type": "image_url"``)
    for the text of a whole JSON document. All three are RE2-compatible, so Arrow can count them.
    """

    def __init__(self, placeholders: Iterable[str] = DEFAULT_PLACEHOLDERS) -> None:
        self.placeholders = tuple(p for p in placeholders if p)
        escaped = {json.dumps(p, ensure_ascii=False)[1:-1] for p in self.placeholders} - set(self.placeholders)
        self.pattern = _alternatives([_DATA_URL, _BASE64_MEDIA, _NUMBERED], self.placeholders)
        self.escaped_pattern = _alternatives([_DATA_URL, _BASE64_MEDIA, _NUMBERED], self.placeholders + tuple(escaped))
        media = "|".join(sorted(MEDIA_PART_TYPES))
        self.document_pattern = f'{self.escaped_pattern}|(?:"type"\\s*:\\s*"(?:{media})")'
        self._pattern = re.compile(self.pattern)

    def find(self, text: str) -> list[str]:
        """Each vision trace in ``text`` (long ones shortened for reports)."""
        return [_short(m.group(0)) for m in self._pattern.finditer(text)]

    def strip(self, text: str) -> tuple[str, int]:
        """``text`` without its vision traces, and how many were removed."""
        cleaned, count = self._pattern.subn("", text)
        if count:
            cleaned = re.sub(r"[ \t]+\n", "\n", cleaned).strip()
        return cleaned, count


def _alternatives(patterns: list[str], literals: tuple[str, ...]) -> str:
    literal = "|".join(re.escape(p) for p in sorted(literals, key=len, reverse=True))
    return "|".join(f"(?:{p})" for p in patterns + ([literal] if literal else []))


def count_in_texts(texts: pa.Array | pa.ChunkedArray, pattern: str) -> int:
    """Matches of ``pattern`` summed over an Arrow string array (vectorised, RE2)."""
    if len(texts) == 0:
        return 0
    return int(pc.sum(pc.count_substring_regex(texts, pattern)).as_py() or 0)


def _short(match: str) -> str:
    return match if len(match) <= 40 else f"{match[:24]}...({len(match)} chars)"


def conversation_traces(conv: Conversation, scanner: VisionScanner) -> list[str]:
    """Where the text of a conversation holds vision traces: ``"<image> in turn 1"``, ..."""
    found = []
    for where, text in _texts(conv):
        found.extend(f"{hit} in {where}" for hit in scanner.find(text))
    return found


def strip_conversation(conv: Conversation, scanner: VisionScanner) -> int:
    """Remove every vision trace from the conversation's text, in place; return how many.

    Names (of tools, calls, tool turns) are not rewritten, since that would break the links
    between calls and results: a trace left there is still found by ``conversation_traces``.
    """
    removed = 0
    if conv.system:
        conv.system, n = scanner.strip(conv.system)
        removed += n
    for message in conv.messages:
        message.content, n = scanner.strip(message.content)
        removed += n
        for call in message.tool_calls:
            if call.arguments is not None:
                call.arguments, n = _strip_value(call.arguments, scanner)
                removed += n
    for tool in conv.tools:
        tool.description, n = scanner.strip(tool.description)
        removed += n
        if tool.parameters is not None:
            tool.parameters, n = _strip_value(tool.parameters, scanner)
            removed += n
    if "extra" in conv.meta:
        conv.meta["extra"], n = _strip_value(conv.meta["extra"], scanner)
        removed += n
    return removed


def _strip_value(value: Any, scanner: VisionScanner) -> tuple[Any, int]:
    if isinstance(value, str):
        return scanner.strip(value)
    if isinstance(value, dict):
        total, out = 0, {}
        for key, item in value.items():
            out[key], n = _strip_value(item, scanner)
            total += n
        return out, total
    if isinstance(value, list):
        pairs = [_strip_value(item, scanner) for item in value]
        return [p[0] for p in pairs], sum(p[1] for p in pairs)
    return value, 0


def _texts(conv: Conversation) -> Iterable[tuple[str, str]]:
    if conv.system:
        yield "the system prompt", conv.system
    for i, message in enumerate(conv.messages, start=1):
        for text in _strings([message.content, message.name]):
            yield f"turn {i}", text
        for call in message.tool_calls:
            for text in _strings([call.name, call.arguments if call.arguments is not None else call.raw_arguments]):
                yield f"turn {i} tool call {call.name}", text
    for tool in conv.tools:
        for text in _strings([tool.name, tool.description, tool.parameters]):
            yield f"tool {tool.name}", text
    for text in _strings(conv.meta.get("extra")):
        yield "the row's other fields", text


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def count_vision_parts(value: Any, scanner: VisionScanner, _top: bool = True) -> int:
    """Vision parts anywhere in a JSON value (an output row): media content parts, traces in strings,
    and, at the top level only, media fields such as ``images`` (a tool argument named ``image`` that
    holds a file path is text, not pixels)."""
    if isinstance(value, str):
        return len(scanner.find(value))
    if isinstance(value, list):
        return sum(count_vision_parts(item, scanner, False) for item in value)
    if not isinstance(value, dict):
        return 0
    count = 1 if value.get("type") in MEDIA_PART_TYPES else 0
    if _top:
        count += sum(1 for key in MEDIA_ROW_FIELDS if value.get(key))
    return count + sum(count_vision_parts(item, scanner, False) for item in value.values())
