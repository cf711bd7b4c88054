"""Turn user paths into items: walk folders in a stable order, open archives in place, never raise."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from vigie.errors import VigieError
from vigie.media.archive import Budget, Member, iter_gzip, iter_tar, iter_zip
from vigie.media.item import Item, ItemError
from vigie.media.sniff import sniff
from vigie.settings import MediaLimits


def list_inputs(paths: Sequence[Path]) -> list[Path]:
    """Files under the given files and folders, sorted, each once; links are not followed out of a folder.

    A path that does not exist is a user error (:class:`VigieError`), not a per-item error.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists() and not p.is_symlink():
            raise VigieError(f"no such file or folder: {p}")
        if p.is_dir():
            root = p.resolve()
            for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
                dirnames.sort()
                for fn in sorted(filenames):
                    f = Path(dirpath) / fn
                    if f.is_symlink():
                        target = f.resolve()
                        if not target.is_file() or not target.is_relative_to(root):
                            continue
                    _add(f, out, seen)
        else:
            _add(p, out, seen)
    return out


def _add(p: Path, out: list[Path], seen: set[Path]) -> None:
    key = p.resolve()
    if key not in seen:
        seen.add(key)
        out.append(p)


def iter_file(path: Path, limits: MediaLimits) -> Iterator[Item | ItemError]:
    """One top-level file as its item, or its archive members (recursively); problems become ItemErrors."""
    name = str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            yield ItemError(name, "too_large", f"{size} bytes is over the limit of {limits.max_bytes}")
            return
        data = path.read_bytes()
    except OSError as exc:
        yield ItemError(name, "unreadable", exc.strerror or str(exc))
        return
    budget = Budget(bytes_left=limits.archive_max_total_bytes, members_left=limits.archive_max_members)
    yield from _expand(name, data, limits, budget, depth=0)


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
    import gzip
    import io

    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            head = fh.read(512)
    except (OSError, EOFError):
        return False
    return len(head) >= 262 and head[257:262] == b"ustar"


def iter_items(paths: Iterable[Path], limits: MediaLimits) -> Iterator[Item | ItemError]:
    """Every item under ``paths``, in a stable order."""
    for p in list_inputs(list(paths)):
        yield from iter_file(p, limits)
