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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

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


def _bounded_read(fh: IO[bytes] | gzip.GzipFile, limit: int) -> bytes | None:
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
    except Exception as exc:  # zipfile raises many kinds on a damaged central directory (found by fuzzing)
        yield ItemError(path, "corrupt", f"cannot read zip archive: {exc}")
        return
    for info in infos:
        name = f"{path}!{info.filename}"
        if info.filename.endswith("/"):  # ZipInfo.is_dir() fails on the empty name of a damaged header
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
        except Exception as exc:  # a damaged member: zlib.error, EOFError, BadZipFile, NotImplementedError...
            yield ItemError(name, "corrupt", f"cannot read member: {exc}")
            continue
        if content is None:
            yield ItemError(name, "zip_bomb", "member is larger than its header declares")
            continue
        yield _take(budget, name, content)


class _Bomb(Exception):
    """A compressed stream inflated past its cap."""


class _Capped:
    """A decompressing file object that refuses to produce more than ``cap`` bytes, reading or seeking.

    tarfile skips over member data by seeking, which for gzip means inflating it: without this cap a
    small tar.gz declaring huge members would cost unbounded CPU even though nothing is kept.
    """

    mode = "rb"

    def __init__(self, inner: gzip.GzipFile, cap: int) -> None:
        self._inner = inner
        self._cap = cap

    def tell(self) -> int:
        return self._inner.tell()

    def read(self, n: int = -1) -> bytes:
        pos = self._inner.tell()
        room = self._cap + 1 - pos
        data = self._inner.read(room if n is None or n < 0 else min(n, room))
        if pos + len(data) > self._cap:
            raise _Bomb
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self.tell() + offset if whence == 1 else -1
        if target < 0:
            raise OSError("unsupported seek")
        if target > self._cap:
            raise _Bomb
        return self._inner.seek(target)


def _inflate_cap(data: bytes, limits: MediaLimits, budget: Budget) -> int:
    """Most bytes a compressed stream may inflate to: the byte budget and the compression ratio limit."""
    return int(min(budget.bytes_left + (1 << 20), max(len(data) * limits.archive_max_ratio, _CHUNK)))


def iter_tar(path: str, data: bytes, limits: MediaLimits, budget: Budget) -> Iterator[Member | ItemError]:
    """Members of a tar, or of a gzip-compressed tar (inflated lazily, under a cap)."""
    try:
        if data[:2] == b"\x1f\x8b":
            stream = _Capped(gzip.GzipFile(fileobj=io.BytesIO(data)), _inflate_cap(data, limits, budget))
            tf = tarfile.open(fileobj=stream, mode="r:")  # type: ignore[call-overload]  # noqa: SIM115
        else:
            tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115 - closed by the with below
    except _Bomb:
        yield ItemError(path, "zip_bomb", f"inflates past {limits.archive_max_ratio:g}× or the byte budget")
        return
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        yield ItemError(path, "corrupt", f"cannot read tar archive: {exc}")
        return
    with tf:
        while True:
            try:
                info = tf.next()
            except _Bomb:
                yield ItemError(
                    path, "zip_bomb", f"inflates past {limits.archive_max_ratio:g}× or the byte budget"
                )
                return
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
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
                content = _bounded_read(fh, info.size) if fh else b""
            except _Bomb:
                yield ItemError(name, "zip_bomb", "archive inflates past its cap")
                return
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                yield ItemError(name, "corrupt", f"cannot read member: {exc}")
                continue
            if content is None or len(content) != info.size:
                yield ItemError(name, "truncated", "member is shorter or longer than its header declares")
                continue
            yield _take(budget, name, content)


def iter_gzip(path: str, data: bytes, limits: MediaLimits, budget: Budget) -> Iterator[Member | ItemError]:
    """A gzip stream that is not a tar: one member named after the file without ``.gz``."""
    inner = path[:-3] if path.lower().endswith(".gz") else path + "!content"
    cap = min(_inflate_cap(data, limits, budget), limits.max_bytes)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            content = _bounded_read(fh, cap)  # stops inflating one chunk past the cap
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a damaged deflate stream
        yield ItemError(path, "corrupt", f"cannot read gzip stream: {exc}")
        return
    if content is None:
        yield ItemError(
            path, "zip_bomb", f"gzip content inflates past {cap} bytes (ratio or size limit), not read"
        )
        return
    yield _take(budget, inner, content)
