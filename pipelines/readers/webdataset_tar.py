"""Existing WebDataset tar shards (including fusionforge's own): one record per sample key.

Members are grouped by key the way webdataset does it (the name up to the first dot of its last
path component); consecutive members with one key form a sample. Media members are *referenced*
by byte range into the tar, never extracted to disk, so a member named ``../x`` can do no harm; it
is still reported as unsafe, because it shows the tar was not made by a well-behaved writer.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from typing import Any

from fusionforge.pipelines.core.schema import Modality
from fusionforge.pipelines.readers.base import (
    InputFile,
    ReaderOptions,
    failed_row,
    media_kind_of,
    media_ref,
    record_row,
)

TEXT_SUFFIXES = ("txt", "text", "caption")
_KEY_RE = re.compile(r"^((?:.*/|)[^./]+)[.]([^/]*)$")


def read_webdataset(file: InputFile, options: ReaderOptions) -> Iterator[dict[str, Any]]:
    """Samples of one tar, in member order."""
    position = 0
    try:
        with tarfile.open(file.path, "r:") as tar:
            key, members = None, []
            for member in _members(tar):
                if isinstance(member, str):
                    yield failed_row(file, position, member, options=options)
                    position += 1
                    continue
                match = _KEY_RE.match(member.name)
                member_key = match.group(1) if match else member.name
                if key is not None and member_key != key:
                    yield _sample(file, position, key, members, tar, options)
                    position += 1
                    members = []
                key = member_key
                members.append(member)
            if members:
                yield _sample(file, position, key, members, tar, options)
                position += 1
            problem = _tail_problem(file.path, tar)
            if problem:
                yield failed_row(file, position, f"corrupt_tar: {problem}", options=options)
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield failed_row(file, position, f"corrupt_tar: {type(exc).__name__}: {exc}", options=options)


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo | str]:
    for member in tar:
        if member.isdir():
            continue
        if _unsafe(member.name):
            yield f"unsafe_member_path: {member.name!r} (absolute or escapes the archive)"
        elif not member.isfile():
            yield f"unsupported_member: {member.name!r} is not a regular file"
        else:
            yield member


def _tail_problem(path: str, tar: tarfile.TarFile) -> str | None:
    """Why the tar ends badly (cut inside a member or a header), or None for a clean end."""
    ends = [m.offset_data + -(-m.size // 512) * 512 for m in tar.getmembers()]
    end = max(ends, default=0)
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        if size < end - 511:
            return f"file ends at byte {size}, inside a member that needs {end}"
        handle.seek(end)
        if handle.read(64 * 1024).strip(b"\0"):
            return f"unreadable bytes after byte {end} (a cut or damaged header)"
    return None


def _unsafe(name: str) -> bool:
    return name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name)


def _sample(
    file: InputFile,
    position: int,
    key: str,
    members: list[tarfile.TarInfo],
    tar: tarfile.TarFile,
    options: ReaderOptions,
) -> dict[str, Any]:
    text, meta, media = None, {}, []
    for member in members:
        suffix = member.name[len(key) + 1 :]
        ext = suffix.rsplit(".", 1)[-1].lower()
        if ext == "json":
            try:
                meta = json.loads(tar.extractfile(member).read().decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                return failed_row(file, position, f"malformed_json: {member.name}: {exc}", options=options)
        elif ext in TEXT_SUFFIXES:
            text = tar.extractfile(member).read().decode("utf-8", errors="replace")
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
