"""Turn user paths into items: walk folders in a stable order, open archives in place, never raise."""

from __future__ import annotations

import gzip
import io
import logging
import os
import stat
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from vigie.errors import VigieError
from vigie.media.archive import Budget, Member, iter_gzip, iter_tar, iter_zip
from vigie.media.item import Item, ItemError
from vigie.media.sniff import sniff
from vigie.settings import MediaLimits

log = logging.getLogger(__name__)


def list_inputs(paths: Sequence[Path]) -> list[Path]:
    """Files under the given files and folders, sorted, each once; links are not followed out of a folder.

    What is skipped (links leading outside, FIFOs and devices) is logged; :func:`scan_inputs` returns it.
    A path that does not exist is a user error (:class:`VigieError`), not a per-item error.
    """
    files, skipped = scan_inputs(paths)
    for note in skipped:
        log.warning("skipped %s: %s", note.path, note.message)
    return files


def scan_inputs(paths: Sequence[Path]) -> tuple[list[Path], list[ItemError]]:
    """:func:`list_inputs` plus a note for each entry skipped, for reports that must list them."""
    out: list[Path] = []
    skipped: list[ItemError] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists() and not p.is_symlink():
            raise VigieError(f"no such file or folder: {p}")
        if p.is_dir():
            root = p.resolve()
            for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
                dirnames.sort()
                for d in dirnames:
                    if (Path(dirpath) / d).is_symlink():
                        skipped.append(
                            ItemError(str(Path(dirpath) / d), "link", "linked folder not followed")
                        )
                for fn in sorted(filenames):
                    f = Path(dirpath) / fn
                    why = _skip_reason(f, root)
                    if why:
                        skipped.append(ItemError(str(f), why[0], why[1]))
                    else:
                        _add(f, out, seen)
        else:
            _add(p, out, seen)
    return out, skipped


def _add(p: Path, out: list[Path], seen: set[Path]) -> None:
    key = p.resolve()
    if key not in seen:
        seen.add(key)
        out.append(p)


def _skip_reason(f: Path, root: Path) -> tuple[str, str] | None:
    """Why a folder entry is not an input: a link out of the tree or a broken one, or not a regular file."""
    if f.is_symlink():
        target = f.resolve()
        if not target.is_relative_to(root):
            return "link", "symbolic link leads outside the folder, not followed"
        if not target.exists():
            return "link", "broken symbolic link"
    try:
        mode = f.stat().st_mode
    except OSError as exc:
        return "unreadable", exc.strerror or str(exc)
    if not stat.S_ISREG(mode):
        return "not_a_file", "not a regular file (FIFO, socket or device), skipped"
    return None


def iter_file(path: Path, limits: MediaLimits) -> Iterator[Item | ItemError]:
    """One top-level file as its item, or its archive members (recursively); problems become ItemErrors."""
    name = str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then tells what we opened
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb", buffering=0) as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                yield ItemError(name, "not_a_file", "not a regular file (FIFO, socket or device)")
                return
            if st.st_size > limits.max_bytes:
                yield ItemError(
                    name, "too_large", f"{st.st_size} bytes is over the limit of {limits.max_bytes}"
                )
                return
            data = _read_capped(fh, limits.max_bytes + 1)
    except OSError as exc:
        yield ItemError(name, "unreadable", exc.strerror or str(exc))
        return
    if len(data) > limits.max_bytes:  # the file grew since fstat
        yield ItemError(name, "too_large", f"over the limit of {limits.max_bytes} bytes")
        return
    budget = Budget(bytes_left=limits.archive_max_total_bytes, members_left=limits.archive_max_members)
    yield from _expand(name, data, limits, budget, depth=0)


def _read_capped(fh: io.RawIOBase, cap: int) -> bytes:
    """Everything up to ``cap`` bytes (raw reads may return less than asked)."""
    buf = bytearray()
    while len(buf) < cap:
        chunk = fh.read(min(cap - len(buf), 1 << 24))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def iter_bytes(name: str, data: bytes, limits: MediaLimits) -> Iterator[Item | ItemError]:
    """Like :func:`iter_file` for bytes already in memory (uploads)."""
    budget = Budget(bytes_left=limits.archive_max_total_bytes, members_left=limits.archive_max_members)
    yield from _expand(name, data, limits, budget, depth=0)


def _expand(
    name: str, data: bytes, limits: MediaLimits, budget: Budget, depth: int
) -> Iterator[Item | ItemError]:
    kind = sniff(data)
    if kind == "application/gzip":
        # a .tar.gz is a tar; a plain .gz wraps one file
        opener = iter_tar if _gzip_is_tar(data) else iter_gzip
    elif kind == "application/zip":
        opener = iter_zip
    elif kind == "application/x-tar":
        opener = iter_tar
    else:
        yield Item(name, data, kind)
        return
    if depth >= limits.archive_max_depth:
        yield ItemError(
            name, "archive_depth", f"archive nested deeper than {limits.archive_max_depth} levels"
        )
        return
    for obj in opener(name, data, limits, budget):
        if isinstance(obj, Member):
            yield from _expand(obj.name, obj.data, limits, budget, depth + 1)
        else:
            yield obj


def _gzip_is_tar(data: bytes) -> bool:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            head = fh.read(512)
    except (OSError, EOFError, zlib.error):  # damaged: read as a plain gzip, which reports it
        return False
    return len(head) >= 262 and head[257:262] == b"ustar"


def iter_items(paths: Iterable[Path], limits: MediaLimits) -> Iterator[Item | ItemError]:
    """Every item under ``paths``, in a stable order, then a note for each folder entry skipped."""
    files, skipped = scan_inputs(list(paths))
    for p in files:
        yield from iter_file(p, limits)
    yield from skipped
