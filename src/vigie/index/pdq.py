"""Exact PDQ radius search (Hamming distance over 256-bit codes)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vigie.index._common import (
    as_ids,
    as_rows,
    check_same_length,
    last_occurrence,
    read_array,
    read_manifest,
    write_store,
)

PDQ_BYTES = 32
KIND = "vigie-pdq-index"
VERSION = 1


class PDQIndex:
    """Exact radius search over PDQ hashes: ids int64, hashes uint8 (n, 32) (``bytes.fromhex`` of the hex)."""

    def __init__(self) -> None:
        self._ids = np.empty(0, dtype=np.int64)
        self._codes = np.empty((0, PDQ_BYTES), dtype=np.uint8)

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def add(self, ids: Any, hashes: Any) -> None:
        ids = as_ids(ids)
        codes = as_rows(hashes, PDQ_BYTES, "hashes")
        check_same_length(ids, codes, "hashes")
        if ids.size == 0:
            return
        keep = last_occurrence(ids)
        ids, codes = ids[keep], codes[keep]
        old = ~np.isin(self._ids, ids)
        self._ids = np.concatenate([self._ids[old], ids])
        self._codes = np.concatenate([self._codes[old], codes])

    def remove(self, ids: Any) -> None:
        ids = as_ids(ids)
        if ids.size == 0 or not len(self):
            return
        keep = ~np.isin(self._ids, ids)
        self._ids = self._ids[keep]
        self._codes = self._codes[keep]

    def search(self, queries: Any, radius: int) -> list[list[tuple[int, int]]]:
        q = as_rows(queries, PDQ_BYTES, "queries")
        radius = _check_radius(radius)
        out: list[list[tuple[int, int]]] = []
        codes = self._codes.view(np.uint64)
        for row in q.view(np.uint64):
            d = np.bitwise_count(codes ^ row).sum(axis=1, dtype=np.int32)
            hit = np.flatnonzero(d <= radius)
            order = np.lexsort((self._ids[hit], d[hit]))
            hit = hit[order]
            out.append(list(zip(self._ids[hit].tolist(), d[hit].tolist(), strict=True)))
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        write_store(path, KIND, VERSION, {"count": len(self)}, {"ids": self._ids, "codes": self._codes})

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = True) -> PDQIndex:
        manifest = read_manifest(path, KIND, (VERSION,))
        ids = read_array(path, manifest, "ids", mmap)
        codes = read_array(path, manifest, "codes", mmap)
        if (
            ids.dtype != np.int64
            or ids.ndim != 1
            or codes.dtype != np.uint8
            or codes.shape != (ids.shape[0], 32)
        ):
            from vigie.errors import IndexStoreError

            raise IndexStoreError(f"{path}: ids/codes arrays have the wrong type or shape")
        idx = cls()
        idx._ids, idx._codes = ids, codes
        return idx


def _check_radius(radius: Any) -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)):
        raise TypeError(f"radius must be an integer, got {type(radius).__name__}")
    r = int(radius)
    if r < 0:
        raise ValueError(f"radius must be >= 0, got {r}")
    return min(r, 256)
