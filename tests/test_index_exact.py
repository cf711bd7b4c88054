"""ExactIndex: lookups against a dict reference, replace/remove, save/load, errors."""

from __future__ import annotations

import numpy as np
import pytest

from vigie.errors import IndexStoreError
from vigie.index import ExactIndex


@pytest.mark.parametrize("width", [16, 20, 32])
def test_lookup_against_dict(width: int) -> None:
    rng = np.random.default_rng(width)
    n = 50_000
    vals = rng.integers(0, 256, size=(n, width), dtype=np.uint8)
    vals[100:200] = vals[0]  # many ids share one value
    vals[300:310, :8] = vals[1, :8]  # same 8-byte prefix, different values
    ids = rng.permutation(n).astype(np.int64)
    idx = ExactIndex(width)
    idx.add(ids[: n // 2], vals[: n // 2])
    idx.add(ids[n // 2 :], vals[n // 2 :])
    ref: dict[bytes, list[int]] = {}
    for i, v in zip(ids.tolist(), vals, strict=True):
        ref.setdefault(v.tobytes(), []).append(i)
    queries = np.concatenate([vals[:400], rng.integers(0, 256, size=(50, width), dtype=np.uint8)])
    got = idx.lookup(queries)
    assert got == [sorted(ref.get(q.tobytes(), [])) for q in queries]
    assert len(got[0]) == 101


def test_replace_remove_save_load(tmp_path) -> None:
    rng = np.random.default_rng(1)
    vals = rng.integers(0, 256, size=(1000, 32), dtype=np.uint8)
    idx = ExactIndex(32)
    idx.add(np.arange(1000), vals)
    idx.add(np.array([5]), vals[6:7])  # id 5 now has the value of id 6
    assert idx.lookup(vals[5:7]) == [[], [5, 6]]
    idx.remove(np.array([6, 99999]))
    assert idx.lookup(vals[5:7]) == [[], [5]]
    assert len(idx) == 999
    idx.save(tmp_path / "x")
    loaded = ExactIndex.load(tmp_path / "x")
    assert len(loaded) == 999 and loaded.width == 32
    assert loaded.lookup(vals[:10]) == idx.lookup(vals[:10])
    loaded.add(np.array([6]), vals[6:7])
    loaded.remove(np.array([0]))
    assert loaded.lookup(vals[:3]) == [[], [1], [2]]
    assert loaded.lookup(vals[5:7]) == [[], [5, 6]]
    loaded.save(tmp_path / "x")
    assert ExactIndex.load(tmp_path / "x").lookup(vals[5:7]) == [[], [5, 6]]


def test_empty_and_errors(tmp_path) -> None:
    idx = ExactIndex(16)
    assert idx.lookup(np.zeros((2, 16), dtype=np.uint8)) == [[], []]
    with pytest.raises(ValueError, match=r"\(n, 16\)"):
        idx.add(np.arange(1), np.zeros((1, 20), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        idx.lookup(np.zeros((1, 16), dtype=np.int32))
    with pytest.raises(ValueError):
        ExactIndex(0)
    idx.save(tmp_path / "e")
    assert len(ExactIndex.load(tmp_path / "e")) == 0
    (tmp_path / "e" / "manifest.json").write_text("[]")
    with pytest.raises(IndexStoreError):
        ExactIndex.load(tmp_path / "e")
    with pytest.raises(IndexStoreError):
        ExactIndex.load(tmp_path / "missing")


def test_narrow_values_and_delta_then_merge() -> None:
    rng = np.random.default_rng(2)
    idx = ExactIndex(4)
    vals = rng.integers(0, 256, size=(30_000, 4), dtype=np.uint8)
    for a in range(0, 30_000, 1000):  # many small adds: delta, then merges
        idx.add(np.arange(a, a + 1000), vals[a : a + 1000])
    ref: dict[bytes, list[int]] = {}
    for i, v in enumerate(vals):
        ref.setdefault(v.tobytes(), []).append(i)
    assert idx.lookup(vals[::97]) == [sorted(ref[v.tobytes()]) for v in vals[::97]]
    idx.remove(np.arange(0, 30_000, 2))
    assert len(idx) == 15_000
    assert idx.lookup(vals[:4]) == [sorted(i for i in ref[v.tobytes()] if i % 2) for v in vals[:4]]
