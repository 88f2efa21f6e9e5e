"""Existing WebDataset tar shards (including fusionforge's own): one record per sample key.

Members are grouped by key the way webdataset does it (the name up to the first dot of its last
path component); consecutive members with one key form a sample. Media members are *referenced*
by byte range into the tar, never extracted to disk, so a member named ``../x`` can do no harm; it
is still reported as unsafe, because it shows the tar was not made by a well-behaved writer. A
refused member (unsafe path, link, device) fails its whole sample: a caption whose image was refused
is not a text record. Damage ends the samples with one ``corrupt_tar`` row saying how much was lost.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from functools import partial
from typing import Any

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import (
    MB,
    InputFile,
    ReaderOptions,
    failed_row,
    media_kind_of,
    media_ref,
    record_row,
)
from fusionforge.pipelines.readers.guard import guarded
from fusionforge.pipelines.readers.rows import Failure, decode_json, too_large

TEXT_SUFFIXES = ("txt", "text", "caption")
_KEY_RE = re.compile(r"^((?:.*/|)[^./]+)[.]([^/]*)$")


def read_webdataset(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """Samples of one tar, in member order."""
    position = 0
    try:
        with tarfile.open(file.path, "r:") as tar:
            for key, members in _samples(tar):
                build = partial(_sample, file, position, key, members, tar, options)
                yield guarded(file, position, _modality_of_names(members), options, build)
                position += 1
            problem = _tail_problem(file.path, tar)
            if problem:
                yield failed_row(file, position, f"corrupt_tar: {problem}", options=options)
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield failed_row(file, position, f"corrupt_tar: {type(exc).__name__}: {exc}", options=options)


def _samples(tar: tarfile.TarFile) -> Iterator[tuple[str, list[tuple[tarfile.TarInfo, str | None]]]]:
    """(key, [(member, why it is refused or None)]) per run of consecutive members with one key."""
    key, members = None, []
    try:
        for member in tar:
            if member.isdir():
                continue
            match = _KEY_RE.match(member.name)
            member_key = match.group(1) if match else member.name
            if key is not None and member_key != key:
                yield key, members
                members = []
            key = member_key
            members.append((member, _refusal(member)))
    except (tarfile.TarError, OSError, EOFError):
        if members:
            yield key, members  # what was read before the damage is a sample; the damage gets its own row
        raise
    if members:
        yield key, members


def _refusal(member: tarfile.TarInfo) -> str | None:
    if _unsafe(member.name):
        return f"unsafe_member_path: {member.name!r} (absolute or escapes the archive)"
    if not member.isfile():
        return f"unsupported_member: {member.name!r} is not a regular file"
    return None


def _tail_problem(path: str, tar: tarfile.TarFile) -> str | None:
    """Why the tar ends badly (cut inside a member or a header), or None for a clean end."""
    ends = [m.offset_data + -(-m.size // 512) * 512 for m in tar.getmembers()]
    end = max(ends, default=0)
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        if size < end - 511:
            return f"file ends at byte {size}, inside a member that needs {end} ({end - size:,} bytes missing)"
        handle.seek(end)
        if handle.read(64 * 1024).strip(b"\0"):
            return (
                f"unreadable bytes after byte {end} (a cut or damaged header); {size - end:,} bytes could not be read"
            )
    return None


def _unsafe(name: str) -> bool:
    return name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name)


def _sample(
    file: InputFile,
    position: int,
    key: str,
    members: list[tuple[tarfile.TarInfo, str | None]],
    tar: tarfile.TarFile,
    options: ReaderOptions,
) -> dict[str, Any]:
    """The sample's record; a refused member, an unreadable member or too much text fails the whole sample."""
    modality = _modality_of_names(members)
    refusal = next((why for _, why in members if why is not None), None)
    if refusal is not None:
        return failed_row(file, position, refusal, modality, options)
    read_in = [m for m, _ in members if _suffix_ext(m.name, key) in ("json", *TEXT_SUFFIXES)]
    size = sum(m.size for m in read_in)
    if size > options.max_record_mb * MB:
        return failed_row(file, position, too_large(f"sample {key!r}", size, options.max_record_mb), modality, options)
    text, meta, media = None, {}, []
    for member, _ in members:
        ext = _suffix_ext(member.name, key)
        if ext == "json":
            data = _member_bytes(tar, member)
            if isinstance(data, str):
                return failed_row(file, position, data, modality, options)
            meta = decode_json(data, member.name)
            if isinstance(meta, Failure):
                code, _, detail = meta.reason.partition(": ")
                reason = f"malformed_json: {member.name}: {detail}" if code == "malformed_json" else meta.reason
                return failed_row(file, position, reason, modality, options)
        elif ext in TEXT_SUFFIXES:
            data = _member_bytes(tar, member)
            if isinstance(data, str):
                return failed_row(file, position, data, modality, options)
            text = data.decode("utf-8", errors="replace")
        elif (kind := media_kind_of(member.name)) is not None:
            media.append(media_ref(kind[0], file.path, kind[1], offset=member.offset_data, size=member.size))
    if isinstance(meta, dict) and meta.get("fusionforge_record"):
        return _restore(file, position, meta, text, media)
    meta = meta if isinstance(meta, dict) else {"json": meta}
    meta["wds_key"] = key
    own_id = meta.pop(options.id_field, None)
    return record_row(
        file, position, _modality(media), text if text is not None else "", media=media, meta=meta, own_id=own_id
    )


def _suffix_ext(name: str, key: str) -> str:
    return name[len(key) + 1 :].rsplit(".", 1)[-1].lower()


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | str:
    """The member's bytes, or why they cannot be read (the tar is cut or damaged inside it)."""
    try:
        return tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        return f"corrupt_tar: member {member.name!r} cannot be read ({type(exc).__name__}: {exc})"


def _modality_of_names(members: list[tuple[tarfile.TarInfo, str | None]]) -> str:
    """The modality the sample's member names promise (for the ledger of a sample that fails)."""
    return _modality([{"kind": kind[0]} for m, _ in members if (kind := media_kind_of(m.name)) is not None])


def _modality(media: list[dict[str, Any]]) -> str:
    kinds = [m["kind"] for m in media]
    if not kinds:
        return Modality.TEXT
    if kinds == ["video"]:
        return Modality.VIDEO
    if kinds == ["image"]:
        return Modality.IMAGE
    return Modality.INTERLEAVED


def _restore(
    file: InputFile, position: int, header: dict[str, Any], text: str | None, media: list[dict[str, Any]]
) -> dict[str, Any]:
    """A record written by fusionforge: keep its id, source, modality, segments and media facts."""
    for item, described in zip(media, header.get("media", [])):
        for field in ("sha256", "width", "height", "duration_s", "fps", "n_frames", "codec"):
            item[field] = described.get(field)
        item["kind"] = described.get("kind") or item["kind"]  # e.g. "frame": a JPEG that is a sampled video frame
    row = record_row(
        file,
        position,
        header["modality"],
        text if text is not None else "",
        media=media,
        segments=header.get("segments"),
        meta=header.get("meta") or {},
    )
    row["id"] = header["id"]
    row["source"] = header["source"]
    row["parent_id"] = header.get("parent_id")
    return row
