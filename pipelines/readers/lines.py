"""The lines of a JSONL file as bytes, plain or compressed: bounded in memory and honest about damage.

Lines end at ``\\n`` only (never at a lone ``\\r``), so a file gives the same lines whether it is read
whole or in byte ranges. A line longer than the record cap is skipped without being held in memory
and given by its size instead. Decompression is bounded per step (a few compressed bytes cannot
expand into one huge buffer) and reads every member or frame of a concatenated stream. A stream
that is cut short or damaged raises ``DamagedFile`` after the lines before the damage, saying how
much of the file could not be read. (zstd's own stream reader ends a cut stream without a word,
and a text-mode reader that meets a bad byte in its read-ahead loses every line after it.)
"""

from __future__ import annotations

import bz2
import io
import os
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from fusionforge.pipelines.readers.base import InputFile

READ_CHUNK = 64 * 1024  # bytes read at a time: planning reads the first rows of every file, so keep it small
OUT_CHUNK = 1024**2  # the most decompressed bytes one step may produce (gzip, bz2)
ZSTD_FEED = 4096  # zstd cannot bound its output, so it is fed little at a time (at most ~128 MB out)
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}


class DamagedFile(Exception):
    """The rest of a file cannot be read; ``detail`` says where the damage starts and how much is lost."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


def compression_of(path: str) -> str | None:
    """``gzip``, ``bz2``, ``zstd`` or None, from the file name."""
    name = path.lower()
    return next((kind for suffix, kind in COMPRESSIONS.items() if name.endswith(suffix)), None)


def iter_lines(file: InputFile, max_bytes: int) -> Iterator[tuple[int, bytes | int]]:
    """``(line number, bytes)`` per line of the file (or of its byte range), or ``(line number, size)``
    for a line over ``max_bytes``; raises ``DamagedFile`` where the file stops being readable.

    A split file gives the lines that start in its byte range. A line's size is its bytes without
    the final newline; a blank line (whitespace only) is given as it is, however long, so callers
    skip it the same way whatever the cap.
    """
    kind = compression_of(file.path)
    with open(file.path, "rb", buffering=0) as raw:
        stream = None if kind is None else _Decompressed(raw, kind)
        if stream is None:
            raw.seek(file.start)
        handle = io.BufferedReader(stream or raw, buffer_size=READ_CHUNK)
        length = file.end - file.start if stream is None and file.end is not None else None
        line_no, offset = file.first_line, 0
        try:
            while length is None or offset < length:
                line = handle.readline(max_bytes + 1)
                if not line:
                    return
                offset += len(line)
                if len(line) > max_bytes and not line.endswith(b"\n"):
                    size, blank, rest = _skip_rest(handle, line)
                    offset += rest
                    line = b"\n" if blank else size
                yield line_no, line
                line_no += 1
        except DamagedFile:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke the stream, the rest of the file is lost
            cause = f"{type(exc).__name__}: {exc}"
            if stream is not None:
                raise DamagedFile(stream.damage(cause)) from exc
            lost = f"read error after byte {raw.tell():,} ({cause}); the rest of the file could not be read"
            raise DamagedFile(lost) from exc


def _skip_rest(handle: BinaryIO, start: bytes) -> tuple[int, bool, int]:
    """Read past the rest of a line that began with ``start``, a chunk at a time, holding none of it:
    (the line's size without its newline, whether it is all whitespace, bytes read past ``start``)."""
    size, blank, read, line = len(start), not start.strip(), 0, start
    while not line.endswith(b"\n"):
        line = handle.readline(READ_CHUNK)
        if not line:
            break
        read += len(line)
        size += len(line)
        blank = blank and not line.strip()
    newline = 1 if line.endswith(b"\n") else 0
    return size - newline, blank, read


class _Decompressed(io.RawIOBase):
    """A raw stream of the decompressed bytes of every member/frame of a gzip, bz2 or zstd file."""

    def __init__(self, raw: BinaryIO, kind: str) -> None:
        self._raw = raw
        self._kind = kind
        self._total = os.fstat(raw.fileno()).st_size
        self._chunks = self._decompress()
        self._pending = memoryview(b"")
        self._damage_from = 0  # start of the compressed chunk being decoded: the damage is there or later

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def damage(self, cause: str) -> str:
        """Where the stream broke and how much of the file from there could not be read."""
        left = self._total - self._damage_from
        return (
            f"the {self._kind} stream is damaged ({cause}); "
            f"{left:,} of {self._total:,} compressed bytes from byte {self._damage_from:,} on could not be read"
        )

    def _read(self) -> bytes:
        self._damage_from = self._raw.tell()
        return self._raw.read(READ_CHUNK)

    def _decompress(self) -> Iterator[bytes]:
        decoder, data = None, b""
        while True:
            if decoder is None:
                data = data or self._read()
                if not data:
                    return
                if self._kind == "gzip" and not data.strip(b"\0"):  # zero padding after the last member
                    data = b""
                    continue
                decoder, feed, data = _DECODERS[self._kind](), data, b""
            elif decoder.needs_input:
                feed = self._read()
                if not feed:
                    raise DamagedFile(
                        f"the {self._kind} stream ends inside a compressed member: the file was cut after "
                        f"{self._total:,} bytes and its end is missing"
                    )
            else:
                feed = b""
            out = decoder.step(feed)
            if out:
                yield out
            if decoder.eof:
                data, decoder = decoder.unused_data, None


class _GzipDecoder:
    """One gzip member; output bounded per step, the rest of the input kept for the next step."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._tail = b""

    def step(self, data: bytes) -> bytes:
        out = self._inner.decompress(self._tail + data, OUT_CHUNK)
        self._tail = self._inner.unconsumed_tail
        return out

    @property
    def needs_input(self) -> bool:
        return not self._tail

    @property
    def eof(self) -> bool:
        return self._inner.eof

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data


class _Bz2Decoder:
    """One bz2 stream; bz2 keeps its unused input itself and says when it needs more."""

    def __init__(self) -> None:
        self._inner = bz2.BZ2Decompressor()

    def step(self, data: bytes) -> bytes:
        return self._inner.decompress(data, OUT_CHUNK)

    @property
    def needs_input(self) -> bool:
        return self._inner.needs_input

    @property
    def eof(self) -> bool:
        return self._inner.eof

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data


class _ZstdDecoder:
    """One zstd frame; zstd cannot bound its output, so it gets ``ZSTD_FEED`` bytes per step."""

    def __init__(self) -> None:
        import zstandard

        self._inner = zstandard.ZstdDecompressor().decompressobj()
        self._input = b""
        self._at = 0

    def step(self, data: bytes) -> bytes:
        if data:
            self._input, self._at = self._input[self._at :] + data, 0
        piece = self._input[self._at : self._at + ZSTD_FEED]
        self._at += len(piece)
        return self._inner.decompress(piece)

    @property
    def needs_input(self) -> bool:
        return self._at >= len(self._input)

    @property
    def eof(self) -> bool:
        return self._inner.eof

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data + self._input[self._at :]


_DECODERS: dict[str, Callable[[], _GzipDecoder | _Bz2Decoder | _ZstdDecoder]] = {
    "gzip": _GzipDecoder,
    "bz2": _Bz2Decoder,
    "zstd": _ZstdDecoder,
}
