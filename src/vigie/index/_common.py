"""Input checks and the on-disk store shared by the indexes (a directory of .npy files + manifest.json)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vigie.errors import IndexStoreError

MANIFEST = "manifest.json"


def as_ids(ids: Any, name: str = "ids") -> np.ndarray:
    """A 1-D int64 array from ``ids`` (any integer array or sequence); floats, bools, objects are refused."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integers, got shape {arr.shape}")
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers (int64), got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name} must fit in int64")
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_rows(values: Any, width: int, name: str) -> np.ndarray:
    """A C-contiguous uint8 array of shape (n, width); a single row of shape (width,) counts as (1, width)."""
    arr = np.asarray(values)
    if arr.dtype != np.uint8:
        raise TypeError(
            f"{name} must be a uint8 array of shape (n, {width}) (the bytes of the hex string), "
            f"got dtype {arr.dtype}"
        )
    if arr.ndim == 1 and arr.shape[0] == width:
        arr = arr.reshape(1, width)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{name} must have shape (n, {width}), got {arr.shape}")
    return np.ascontiguousarray(arr)


def check_same_length(ids: np.ndarray, rows: np.ndarray, what: str) -> None:
    if ids.shape[0] != rows.shape[0]:
        raise ValueError(f"got {ids.shape[0]} ids but {rows.shape[0]} {what}")


def strictly_increasing(a: np.ndarray) -> bool:
    return a.size < 2 or bool(np.all(a[1:] > a[:-1]))


def unique_ids(ids: np.ndarray) -> np.ndarray:
    """Sorted distinct ids (np.unique's hash path is slow on 10M int64; this sorts)."""
    if strictly_increasing(ids):
        return ids
    s = np.sort(ids)
    keep = np.ones(s.size, bool)
    keep[1:] = s[1:] != s[:-1]
    return s[keep]


def sorted_last_wins(
    ids: np.ndarray, rows: np.ndarray, take: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, rows) ordered by id; of an id given twice in one call, the last row wins."""
    if strictly_increasing(ids):
        return ids, rows
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    rows = take(rows, order) if take is not None else rows[order]
    last = np.ones(ids.size, bool)
    last[:-1] = ids[1:] != ids[:-1]
    if not last.all():
        ids, rows = ids[last], rows[last]
    return ids, np.ascontiguousarray(rows)


# ---------------------------------------------------------------------------------------------------- store


def write_store(
    path: str | os.PathLike[str], kind: str, version: int, meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Write ``arrays`` as .npy files and a manifest into ``path`` atomically (temp dir renamed in place)."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        files = {}
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            fname = f"{name}.npy"
            np.save(tmp / fname, arr, allow_pickle=False)
            files[name] = {"file": fname, "dtype": arr.dtype.str, "shape": list(arr.shape)}
        manifest = {"format": kind, "version": version, **meta, "arrays": files}
        with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        old = None
        if dest.exists():
            if not (dest / MANIFEST).exists() and any(dest.iterdir()):
                raise IndexStoreError(
                    f"{dest}: exists and is not an index directory; refusing to overwrite it"
                )
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(path: str | os.PathLike[str], kind: str, versions: tuple[int, ...]) -> dict[str, Any]:
    src = Path(path)
    mf = src / MANIFEST
    if not src.is_dir():
        raise IndexStoreError(f"{src}: no index directory there")
    if not mf.is_file():
        raise IndexStoreError(f"{src}: {MANIFEST} is missing; not an index directory or an interrupted save")
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexStoreError(f"{mf}: unreadable or corrupt manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("arrays"), dict):
        raise IndexStoreError(f"{mf}: corrupt manifest (no 'arrays' table)")
    if manifest.get("format") != kind:
        raise IndexStoreError(f"{mf}: this is a {manifest.get('format')!r} store, expected {kind!r}")
    if manifest.get("version") not in versions:
        raise IndexStoreError(
            f"{mf}: unsupported format version {manifest.get('version')!r} "
            f"(this vigie reads {list(versions)})"
        )
    return manifest


def read_array(path: str | os.PathLike[str], manifest: dict[str, Any], name: str, mmap: bool) -> np.ndarray:
    """Load one array named in the manifest, memory-mapped when ``mmap``, checking dtype and shape."""
    src = Path(path)
    spec = manifest["arrays"].get(name)
    if not isinstance(spec, dict) or "file" not in spec:
        raise IndexStoreError(f"{src / MANIFEST}: corrupt manifest (array {name!r} not described)")
    fname = str(spec["file"])
    if "/" in fname or "\\" in fname or fname.startswith("."):
        raise IndexStoreError(f"{src / MANIFEST}: corrupt manifest (bad file name {fname!r})")
    fpath = src / fname
    if not fpath.is_file():
        raise IndexStoreError(f"{fpath}: missing index file")
    try:
        arr = np.load(fpath, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError/... on a damaged file
        raise IndexStoreError(f"{fpath}: corrupt index file ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise IndexStoreError(f"{fpath}: corrupt index file (not an array)")
    if arr.dtype.str != spec.get("dtype") or list(arr.shape) != list(spec.get("shape", [])):
        raise IndexStoreError(
            f"{fpath}: does not match the manifest (dtype {arr.dtype.str}, shape {list(arr.shape)}; "
            f"expected {spec.get('dtype')}, {spec.get('shape')}); the index is corrupt or mixed up"
        )
    return arr
