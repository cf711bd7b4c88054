"""Read zip, tar, tar.gz and gzip archives in memory, member by member, refusing what could hurt.

Guards: names that climb out of the archive (``..``, absolute paths, drive letters) and links or device
entries are reported and skipped; member sizes are checked against a shared byte budget and a compression
ratio before reading, and reads are bounded so a lying header cannot exhaust memory; nesting stops at a
depth limit. Nothing is ever extracted to disk.
"""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from vigie.media.item import ItemError
from vigie.settings import MediaLimits

_CHUNK = 1 << 20


@dataclass
class Budget:
    """Bytes and members still allowed for one top-level file and everything nested in it."""

    bytes_left: int
    members_left: int


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes


def unsafe_name(name: str) -> str | None:
    """Why a member name is unsafe, or None: absolute, drive-qualified, or climbing with '..'."""
    norm = name.replace("\\", "/")
    if norm.startswith("/"):
        return "absolute path"
    if len(norm) > 1 and norm[1] == ":":
        return "drive letter"
    if ".." in PurePosixPath(norm).parts:
        return "'..' in path"
    if "\x00" in name:
        return "NUL in name"
    return None


def _bounded_read(fh: io.BufferedIOBase | gzip.GzipFile, limit: int) -> bytes | None:
    """At most ``limit`` bytes; None when the stream holds more (the declared size lied, or a bomb)."""
    buf = bytearray()
    while True:
        chunk = fh.read(min(_CHUNK, limit + 1 - len(buf)))
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            return None


def _screen(
    name: str,
    raw_name: str,
    refusal: ItemError | None,
    declared: int,
    packed: int,
    limits: MediaLimits,
    budget: Budget,
) -> ItemError | None:
    """Why a member must be skipped (unsafe name, link or special file, over a limit), or None to read it."""
    why = unsafe_name(raw_name)
    if why:
        return ItemError(name, "path_traversal", f"unsafe member name ({why}), skipped")
    if refusal is not None:
        return refusal
    if budget.members_left <= 0:
        return ItemError(name, "archive_limit", f"more than {limits.archive_max_members} archive members")
    if declared > min(budget.bytes_left, limits.max_bytes):
        return ItemError(name, "zip_bomb", f"member declares {declared} bytes, over the remaining budget")
    if declared > _CHUNK and declared / max(packed, 1) > limits.archive_max_ratio:
        return ItemError(
            name,
            "zip_bomb",
            f"compression ratio {declared / max(packed, 1):.0f} over {limits.archive_max_ratio:g}",
        )
    return None


def _take(budget: Budget, name: str, content: bytes) -> Member:
    budget.bytes_left -= len(content)
    budget.members_left -= 1
    return Member(name, content)


def iter_zip(path: str, data: bytes, limits: MediaLimits, budget: Budget) -> Iterator[Member | ItemError]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield ItemError(path, "corrupt", f"cannot read zip archive: {exc}")
        return
    for info in infos:
        name = f"{path}!{info.filename}"
        if info.is_dir():
            continue
        mode = info.external_attr >> 16
        refusal = None
        if mode and (stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or mode & 0o170000 == 0)):
            refusal = ItemError(name, "link", "symbolic link or special file in archive, skipped")
        elif info.flag_bits & 0x1:
            refusal = ItemError(name, "encrypted", "encrypted archive member, cannot be read")
        err = _screen(name, info.filename, refusal, info.file_size, info.compress_size, limits, budget)
        if err:
            yield err
            if err.reason == "archive_limit":
                return
            continue
        try:
            with zf.open(info) as fh:
                content = _bounded_read(fh, min(info.file_size, budget.bytes_left))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            yield ItemError(name, "corrupt", f"cannot read member: {exc}")
            continue
        if content is None:
            yield ItemError(name, "zip_bomb", "member is larger than its header declares")
            continue
        yield _take(budget, name, content)


def iter_tar(path: str, data: bytes, limits: MediaLimits, budget: Budget) -> Iterator[Member | ItemError]:
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield ItemError(path, "corrupt", f"cannot read tar archive: {exc}")
        return
    with tf:
        while True:
            try:
                info = tf.next()
            except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
                yield ItemError(path, "corrupt", f"tar archive damaged: {exc}")
                return
            if info is None:
                return
            name = f"{path}!{info.name}"
            if info.isdir():
                continue
            refusal = None if info.isfile() else ItemError(name, "link", "link or special file, skipped")
            err = _screen(name, info.name, refusal, info.size, info.size, limits, budget)
            if err:
                yield err
                if err.reason == "archive_limit":
                    return
                continue
            try:
                fh = tf.extractfile(info)
                content = _bounded_read(fh, info.size) if fh else b""  # type: ignore[arg-type]
            except (tarfile.TarError, OSError, EOFError) as exc:
                yield ItemError(name, "corrupt", f"cannot read member: {exc}")
                continue
            if content is None or len(content) != info.size:
                yield ItemError(name, "truncated", "member is shorter or longer than its header declares")
                continue
            yield _take(budget, name, content)


def iter_gzip(path: str, data: bytes, limits: MediaLimits, budget: Budget) -> Iterator[Member | ItemError]:
    """A gzip stream that is not a tar: one member named after the file without ``.gz``."""
    inner = path[:-3] if path.lower().endswith(".gz") else path + "!content"
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            content = _bounded_read(fh, min(budget.bytes_left, limits.max_bytes))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        yield ItemError(path, "corrupt", f"cannot read gzip stream: {exc}")
        return
    if content is None:
        yield ItemError(path, "zip_bomb", "gzip content is over the size budget")
        return
    if len(content) > _CHUNK and len(content) / max(len(data), 1) > limits.archive_max_ratio:
        yield ItemError(path, "zip_bomb", f"compression ratio over {limits.archive_max_ratio:g}")
        return
    yield _take(budget, inner, content)
