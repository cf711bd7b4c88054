"""Exact lookup for fixed-width values (md5, sha1, sha256): sorted numpy arrays + searchsorted, no dict."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vigie.errors import IndexStoreError
from vigie.index._common import (
    as_ids,
    as_rows,
    check_same_length,
    last_occurrence,
    read_array,
    read_manifest,
    write_store,
)

KIND = "vigie-exact-index"
VERSION = 1


class ExactIndex:
    """Ids by exact value; several ids may share a value; re-adding an id replaces its value."""

    def __init__(self, width_bytes: int) -> None:
        if isinstance(width_bytes, bool) or not isinstance(width_bytes, (int, np.integer)) or width_bytes < 1:
            raise ValueError(f"width_bytes must be a positive integer, got {width_bytes!r}")
        self.width = int(width_bytes)
        self._ids = np.empty(0, dtype=np.int64)
        self._values = np.empty((0, self.width), dtype=np.uint8)

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def add(self, ids: Any, values: Any) -> None:
        ids = as_ids(ids)
        vals = as_rows(values, self.width, "values")
        check_same_length(ids, vals, "values")
        if ids.size == 0:
            return
        keep = last_occurrence(ids)
        ids, vals = ids[keep], vals[keep]
        old = ~np.isin(self._ids, ids)
        self._ids = np.concatenate([self._ids[old], ids])
        self._values = np.concatenate([self._values[old], vals])

    def remove(self, ids: Any) -> None:
        ids = as_ids(ids)
        if ids.size == 0 or not len(self):
            return
        keep = ~np.isin(self._ids, ids)
        self._ids = self._ids[keep]
        self._values = self._values[keep]

    def lookup(self, values: Any) -> list[list[int]]:
        vals = as_rows(values, self.width, "values")
        out = []
        for row in vals:
            hit = np.flatnonzero((self._values == row).all(axis=1))
            out.append(sorted(self._ids[hit].tolist()))
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        write_store(
            path,
            KIND,
            VERSION,
            {"count": len(self), "width": self.width},
            {"ids": self._ids, "values": self._values},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = True) -> ExactIndex:
        manifest = read_manifest(path, KIND, (VERSION,))
        width = manifest.get("width")
        if not isinstance(width, int) or width < 1:
            raise IndexStoreError(f"{path}: corrupt manifest (bad width {width!r})")
        ids = read_array(path, manifest, "ids", mmap)
        vals = read_array(path, manifest, "values", mmap)
        if (
            ids.dtype != np.int64
            or ids.ndim != 1
            or vals.dtype != np.uint8
            or vals.shape != (len(ids), width)
        ):
            raise IndexStoreError(f"{path}: ids/values arrays have the wrong type or shape")
        idx = cls(width)
        idx._ids, idx._values = ids, vals
        return idx
