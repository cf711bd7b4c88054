"""Exact lookup for fixed-width values (md5, sha1, sha256): sorted numpy arrays + searchsorted, no dict.

Main part (rebuilt on merge): ``keys`` (the first 8 bytes of each value as a big-endian uint64) sorted
ascending, ``values`` and ``ids`` in the same order, ``by_id`` (the permutation that sorts ``ids``, for
removal by id) and an ``alive`` byte per row (tombstones). Recent additions live in a small delta (Python
dicts, at most :data:`DELTA_MAX` entries) until merged. About ``width + 24`` bytes per entry: 560 MB for 10M
sha256 values, where a dict of bytes would take several GB.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vigie.errors import IndexStoreError
from vigie.index._common import (
    as_ids,
    as_rows,
    check_same_length,
    read_array,
    read_manifest,
    sorted_last_wins,
    unique_ids,
    write_store,
)

KIND = "vigie-exact-index"
VERSION = 1
DELTA_MIN, DELTA_MAX = 4_096, 65_536


def _keys(values: np.ndarray) -> np.ndarray:
    """Big-endian uint64 of the first 8 bytes (zero-padded): sorting keys sorts values by their prefix."""
    n, w = values.shape
    if w >= 8:
        head = np.ascontiguousarray(values[:, :8])
    else:
        head = np.zeros((n, 8), np.uint8)
        head[:, :w] = values
    return head.view(">u8").reshape(n).astype(np.uint64)


class ExactIndex:
    """Ids by exact value; several ids may share a value; re-adding an id replaces its value."""

    def __init__(self, width_bytes: int) -> None:
        if isinstance(width_bytes, bool) or not isinstance(width_bytes, (int, np.integer)) or width_bytes < 1:
            raise ValueError(f"width_bytes must be a positive integer, got {width_bytes!r}")
        self.width = int(width_bytes)
        self._set_main(
            np.empty(0, np.uint64), np.empty((0, self.width), np.uint8), np.empty(0, np.int64), None
        )
        self._d_val: dict[int, bytes] = {}  # delta: id -> value
        self._d_ids: dict[bytes, set[int]] = {}  # delta: value -> ids

    def _set_main(
        self, keys: np.ndarray, values: np.ndarray, ids: np.ndarray, by_id: np.ndarray | None
    ) -> None:
        self._keys, self._values, self._ids = keys, values, ids
        self._by_id = np.argsort(ids, kind="stable") if by_id is None else by_id
        self._alive = np.ones(ids.shape[0], np.uint8)
        self._m_live = int(ids.shape[0])

    def __len__(self) -> int:
        return self._m_live + len(self._d_val)

    @property
    def nbytes(self) -> int:
        arrays = (self._keys, self._values, self._ids, self._by_id, self._alive)
        return int(sum(a.nbytes for a in arrays)) + 100 * len(self._d_val)

    def _delta_limit(self) -> int:
        return min(DELTA_MAX, max(DELTA_MIN, self._ids.shape[0] // 8))

    def _kill(self, ids: np.ndarray) -> None:
        n = self._ids.shape[0]
        if n:
            at = np.searchsorted(self._ids, ids, sorter=self._by_id)
            inside = at < n
            pos = self._by_id[at[inside]]
            pos = pos[(self._ids[pos] == ids[inside]) & (self._alive[pos] == 1)]
            self._alive[pos] = 0
            self._m_live -= int(pos.size)
        if self._d_val:
            if ids.size > len(self._d_val):  # loop over the smaller side
                held = np.fromiter(self._d_val.keys(), np.int64, len(self._d_val))
                ids = held[np.isin(held, ids)]
            for i in ids.tolist():
                v = self._d_val.pop(i, None)
                if v is not None:
                    s = self._d_ids[v]
                    s.discard(i)
                    if not s:
                        del self._d_ids[v]

    def add(self, ids: Any, values: Any) -> None:
        """Add (or replace) ``ids`` with ``values`` (uint8, n x width)."""
        ids = as_ids(ids)
        vals = as_rows(values, self.width, "values")
        check_same_length(ids, vals, "values")
        if ids.size == 0:
            return
        ids, vals = sorted_last_wins(ids, vals)
        self._kill(ids)
        if len(self._d_val) + ids.size > self._delta_limit():
            self._rebuild(ids, vals)
            return
        for i, v in zip(ids.tolist(), vals, strict=True):
            b = v.tobytes()
            self._d_val[i] = b
            self._d_ids.setdefault(b, set()).add(i)

    def remove(self, ids: Any) -> None:
        """Remove ``ids`` (unknown ids are ignored)."""
        ids = as_ids(ids)
        if ids.size == 0 or not len(self):
            return
        self._kill(unique_ids(ids))
        dead = self._ids.shape[0] - self._m_live
        if dead > DELTA_MIN and dead > self._ids.shape[0] // 2:
            self._rebuild()

    def _rebuild(self, new_ids: np.ndarray | None = None, new_vals: np.ndarray | None = None) -> None:
        if self._m_live == self._ids.shape[0]:
            ids_parts, val_parts = [self._ids], [self._values]
        else:
            keep = np.flatnonzero(self._alive)
            ids_parts, val_parts = [self._ids[keep]], [self._values[keep]]
        if self._d_val:
            ids_parts.append(np.fromiter(self._d_val.keys(), np.int64, len(self._d_val)))
            raw = b"".join(self._d_val.values())
            val_parts.append(np.frombuffer(raw, np.uint8).reshape(-1, self.width))
        if new_ids is not None and new_vals is not None:
            ids_parts.append(new_ids)
            val_parts.append(new_vals)
        ids = np.concatenate(ids_parts)
        vals = np.concatenate(val_parts)
        keys = _keys(vals)
        order = np.argsort(keys, kind="stable")
        self._d_val, self._d_ids = {}, {}
        self._set_main(keys[order], vals[order], ids[order], None)

    def lookup(self, values: Any) -> list[list[int]]:
        """Per value, the sorted ids holding exactly that value ([] when none)."""
        vals = as_rows(values, self.width, "values")
        nq = vals.shape[0]
        out: list[list[int]] = [[] for _ in range(nq)]
        if nq == 0:
            return out
        if self._m_live:
            qk = _keys(vals)
            lo = np.searchsorted(self._keys, qk, "left")
            hi = np.searchsorted(self._keys, qk, "right")
            for q in np.flatnonzero(hi > lo).tolist():
                a, b = int(lo[q]), int(hi[q])
                same = (self._values[a:b] == vals[q]).all(axis=1) & (self._alive[a:b] == 1)
                if same.any():
                    out[q] = self._ids[a:b][same].tolist()
        if self._d_ids:
            for q in range(nq):
                extra = self._d_ids.get(vals[q].tobytes())
                if extra:
                    out[q].extend(extra)
        for q in range(nq):
            if len(out[q]) > 1:
                out[q].sort()
        return out

    def compact(self) -> None:
        """Merge the delta and drop tombstones now (save does this)."""
        if self._d_val or self._m_live != self._ids.shape[0]:
            self._rebuild()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to directory ``path`` (replaced atomically if it exists)."""
        self.compact()
        write_store(
            path,
            KIND,
            VERSION,
            {"count": int(self._ids.shape[0]), "width": self.width},
            {"keys": self._keys, "values": self._values, "ids": self._ids, "by_id": self._by_id},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = True) -> ExactIndex:
        """Open an index written by :meth:`save`; arrays are memory-mapped unless ``mmap`` is False."""
        manifest = read_manifest(path, KIND, (VERSION,))
        where = os.fspath(path)
        width, n = manifest.get("width"), manifest.get("count")
        if type(width) is not int or width < 1:
            raise IndexStoreError(f"{where}: corrupt manifest (bad width {width!r})")
        if type(n) is not int or n < 0:
            raise IndexStoreError(f"{where}: corrupt manifest (bad count {n!r})")
        keys = np.asarray(read_array(path, manifest, "keys", mmap))
        vals = np.asarray(read_array(path, manifest, "values", mmap))
        ids = np.asarray(read_array(path, manifest, "ids", mmap))
        by_id = np.asarray(read_array(path, manifest, "by_id", mmap))
        if keys.dtype != np.uint64 or keys.shape != (n,):
            raise IndexStoreError(f"{where}: keys.npy does not hold {n} uint64 keys")
        if vals.dtype != np.uint8 or vals.shape != (n, width):
            raise IndexStoreError(f"{where}: values.npy does not hold {n} x {width} bytes")
        if ids.dtype != np.int64 or ids.shape != (n,) or by_id.dtype != np.int64 or by_id.shape != (n,):
            raise IndexStoreError(f"{where}: ids.npy/by_id.npy do not hold {n} int64 entries")
        if n:
            if not bool(np.all(keys[1:] >= keys[:-1])) or not np.array_equal(keys, _keys(vals)):
                raise IndexStoreError(f"{where}: keys.npy does not match values.npy; the index is corrupt")
            if int(by_id.min()) < 0 or int(by_id.max()) >= n or not bool(np.all(np.diff(ids[by_id]) > 0)):
                raise IndexStoreError(f"{where}: by_id.npy is not the id order; the index is corrupt")
        idx = cls(width)
        idx._set_main(keys, vals, ids, by_id)
        return idx
