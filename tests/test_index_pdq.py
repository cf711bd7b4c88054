"""PDQIndex against a brute-force numpy reference: radii, planted near-duplicates, add/remove, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vigie.errors import IndexStoreError
from vigie.index import PDQIndex


def brute(
    ids: np.ndarray, codes: np.ndarray, queries: np.ndarray, radius: int
) -> list[list[tuple[int, int]]]:
    c64 = codes.view(np.uint64)
    out = []
    for row in queries.view(np.uint64):
        d = np.bitwise_count(c64 ^ row).sum(axis=1)
        hit = np.flatnonzero(d <= radius)
        out.append(sorted(zip(ids[hit].tolist(), d[hit].tolist(), strict=True), key=lambda t: (t[1], t[0])))
    return out


def flip(code: np.ndarray, nbits: int, rng: np.random.Generator) -> np.ndarray:
    """``code`` with exactly ``nbits`` distinct bits flipped."""
    bits = np.unpackbits(code)
    pos = rng.choice(256, size=nbits, replace=False)
    bits[pos] ^= 1
    return np.packbits(bits)


def planted(n: int, nq: int, seed: int, dists: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random codes; near-duplicates of the first queries planted at exactly the given distances."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(nq, 32), dtype=np.uint8)
    k = 0
    for qi in range(nq // 2):
        for d in dists:
            if k >= n:
                break
            codes[k] = flip(queries[qi], d, rng)
            k += 1
    ids = rng.permutation(np.arange(10 * n, dtype=np.int64))[:n]
    return ids, codes, queries


@pytest.mark.parametrize("radius", [0, 1, 15, 31, 32, 40, 63, 64, 128, 256])
def test_matches_brute_force(radius: int) -> None:
    ids, codes, queries = planted(
        20_000, 40, seed=radius, dists=[0, 1, 5, 15, 16, 30, 31, 32, 33, 40, 63, 64, 65]
    )
    idx = PDQIndex()
    idx.add(ids, codes)
    got = idx.search(queries, radius)
    want = brute(ids, codes, queries, radius)
    assert got == want
    if radius in (31, 63):
        assert sum(map(len, got)) >= 20


def test_large_index_matching_radii() -> None:
    ids, codes, queries = planted(200_000, 200, seed=7, dists=[*list(range(0, 41, 3)), 31, 32])
    idx = PDQIndex()
    idx.add(ids, codes)
    for radius in (31, 32, 63):
        assert idx.search(queries, radius) == brute(ids, codes, queries, radius)


def test_result_shape_and_types() -> None:
    ids, codes, queries = planted(1000, 4, seed=1, dists=[0, 3])
    idx = PDQIndex()
    idx.add(ids, codes)
    res = idx.search(queries, 31)
    assert isinstance(res, list) and len(res) == 4
    assert res[0][0][1] == 0 and isinstance(res[0][0][0], int) and isinstance(res[0][0][1], int)
    assert res[0][1][1] == 3


def test_duplicates_codes_and_ties_sorted_by_id() -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, size=(1, 32), dtype=np.uint8)
    codes = np.repeat(base, 50, axis=0)
    ids = np.arange(50, dtype=np.int64)[::-1].copy()
    idx = PDQIndex()
    idx.add(ids, codes)
    res = idx.search(base, 0)[0]
    assert res == [(i, 0) for i in range(50)]


def test_readd_replaces_and_remove() -> None:
    ids, codes, queries = planted(5000, 10, seed=4, dists=[0, 2])
    idx = PDQIndex()
    idx.add(ids, codes)
    assert len(idx) == 5000
    # replace the planted near-duplicates with random codes: they must disappear from the results
    rng = np.random.default_rng(5)
    new = rng.integers(0, 256, size=(4, 32), dtype=np.uint8)
    idx.add(ids[:4], new)
    assert len(idx) == 5000
    codes2 = codes.copy()
    codes2[:4] = new
    assert idx.search(queries, 31) == brute(ids, codes2, queries, 31)
    idx.remove(ids[4:8])
    idx.remove(np.array([123456789], dtype=np.int64))  # unknown id: no-op
    assert len(idx) == 4996
    keep = np.ones(5000, bool)
    keep[4:8] = False
    assert idx.search(queries, 31) == brute(ids[keep], codes2[keep], queries, 31)
    # same id twice in one call: the last one wins
    idx.add(np.array([777, 777]), np.stack([codes[0], queries[0]]))
    assert (777, 0) in idx.search(queries[:1], 0)[0]


def test_incremental_many_small_adds_and_removes() -> None:
    rng = np.random.default_rng(11)
    ref: dict[int, np.ndarray] = {}
    idx = PDQIndex()
    queries = rng.integers(0, 256, size=(20, 32), dtype=np.uint8)
    for step in range(60):
        n = int(rng.integers(1, 3000))
        new_ids = rng.integers(0, 50_000, size=n).astype(np.int64)
        new_codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
        for j in range(0, n, 7):
            new_codes[j] = flip(queries[j % 20], int(rng.integers(0, 40)), rng)
        idx.add(new_ids, new_codes)
        for i, c in zip(new_ids.tolist(), new_codes, strict=True):
            ref[i] = c
        if step % 3 == 0:
            gone = rng.choice(np.array(sorted(ref)), size=min(len(ref), 500), replace=False)
            idx.remove(gone)
            for i in gone.tolist():
                ref.pop(i)
        assert len(idx) == len(ref)
        if step % 10 == 9:
            rid = np.array(sorted(ref), dtype=np.int64)
            rc = np.stack([ref[i] for i in rid.tolist()])
            for radius in (0, 31, 64):
                assert idx.search(queries, radius) == brute(rid, rc, queries, radius)


def test_empty_index_and_empty_queries() -> None:
    idx = PDQIndex()
    assert len(idx) == 0
    q = np.zeros((3, 32), dtype=np.uint8)
    assert idx.search(q, 31) == [[], [], []]
    assert idx.search(np.empty((0, 32), dtype=np.uint8), 31) == []
    idx.add(np.empty(0, dtype=np.int64), np.empty((0, 32), dtype=np.uint8))
    idx.remove(np.array([1, 2]))
    assert len(idx) == 0


def test_save_load_round_trip_then_add(tmp_path) -> None:
    ids, codes, queries = planted(30_000, 30, seed=8, dists=[0, 7, 31, 32])
    idx = PDQIndex()
    idx.add(ids[:20_000], codes[:20_000])
    idx.add(ids[20_000:], codes[20_000:])  # partly still in the delta when saved
    idx.remove(ids[:3])
    idx.save(tmp_path / "ix")
    loaded = PDQIndex.load(tmp_path / "ix")
    assert len(loaded) == len(idx) == 30_000 - 3
    want = brute(ids[3:], codes[3:], queries, 31)
    assert loaded.search(queries, 31) == want
    # a loaded (memory-mapped) index still takes adds and removes
    rng = np.random.default_rng(9)
    extra = np.stack([flip(queries[-1], 4, rng)])
    loaded.add(np.array([10**12]), extra)
    loaded.remove(ids[3:6])
    got = loaded.search(queries, 31)
    assert got == brute(np.concatenate([ids[6:], [10**12]]), np.concatenate([codes[6:], extra]), queries, 31)
    # saving over an existing index replaces it
    loaded.save(tmp_path / "ix")
    again = PDQIndex.load(tmp_path / "ix", mmap=False)
    assert again.search(queries, 31) == got
    empty = PDQIndex()
    empty.save(tmp_path / "empty")
    assert len(PDQIndex.load(tmp_path / "empty")) == 0


def test_bad_inputs_are_clear_errors() -> None:
    idx = PDQIndex()
    with pytest.raises(TypeError, match="uint8"):
        idx.add(np.arange(2), np.zeros((2, 32), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(n, 32\)"):
        idx.add(np.arange(2), np.zeros((2, 31), dtype=np.uint8))
    with pytest.raises(ValueError, match="2 ids but 3"):
        idx.add(np.arange(2), np.zeros((3, 32), dtype=np.uint8))
    with pytest.raises(TypeError, match="integers"):
        idx.add(np.array([1.5, 2.5]), np.zeros((2, 32), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        idx.search(np.zeros((1, 32), dtype=np.float32), 3)
    with pytest.raises(ValueError, match="radius"):
        idx.search(np.zeros((1, 32), dtype=np.uint8), -1)
    with pytest.raises(TypeError, match="radius"):
        idx.search(np.zeros((1, 32), dtype=np.uint8), 3.5)


def test_corrupt_or_missing_store(tmp_path) -> None:
    ids, codes, _ = planted(2000, 2, seed=2, dists=[0])
    idx = PDQIndex()
    idx.add(ids, codes)
    path = tmp_path / "ix"
    idx.save(path)
    with pytest.raises(IndexStoreError, match="no index directory"):
        PDQIndex.load(tmp_path / "nowhere")
    mf = path / "manifest.json"
    good = mf.read_text()
    mf.write_text("{not json")
    with pytest.raises(IndexStoreError, match="corrupt manifest"):
        PDQIndex.load(path)
    data = json.loads(good)
    data["version"] = 999
    mf.write_text(json.dumps(data))
    with pytest.raises(IndexStoreError, match="version"):
        PDQIndex.load(path)
    data = json.loads(good)
    data["format"] = "something-else"
    mf.write_text(json.dumps(data))
    with pytest.raises(IndexStoreError):
        PDQIndex.load(path)
    mf.write_text(good)
    (path / "codes.npy").write_bytes(b"garbage")
    with pytest.raises(IndexStoreError, match="codes"):
        PDQIndex.load(path)
    (path / "codes.npy").unlink()
    with pytest.raises(IndexStoreError, match="missing"):
        PDQIndex.load(path)
    mf.unlink()
    with pytest.raises(IndexStoreError, match="manifest"):
        PDQIndex.load(path)


@pytest.mark.parametrize("chunks", [11, 12, 16, 32])
def test_explicit_chunk_layouts_are_exact(chunks: int) -> None:
    ids, codes, queries = planted(40_000, 30, seed=chunks, dists=[0, 8, 16, 23, 24, 31, 32, 47, 63, 64])
    idx = PDQIndex(chunks=chunks)
    idx.add(ids, codes)
    assert len(idx._layout) == chunks
    for radius in (0, 7, 8, 31, 32, 63):
        assert idx.search(queries, radius) == brute(ids, codes, queries, radius), radius


def test_multi_index_path_is_used_at_matching_radius() -> None:
    ids, codes, queries = planted(100_000, 20, seed=12, dists=[0, 31])
    idx = PDQIndex()
    idx.add(ids, codes)
    assert idx._layout and idx._plan(31) is not None
    assert idx._plan(200) is None  # large radii scan
    idx.remove(ids[:1])  # tombstone on the main part, seen by the multi-index kernel
    assert idx.search(queries, 31) == brute(ids[1:], codes[1:], queries, 31)


def test_skewed_buckets_and_many_hits() -> None:
    """Real hashes are not uniform: a giant bucket (thousands of near-identical codes) must still give exact
    results (the per-query scan fallback) and more hits than the kernel's first output capacity."""
    rng = np.random.default_rng(13)
    n = 60_000
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    hot = codes[0].copy()
    for i in range(1, 20_000):
        codes[i] = flip(hot, int(rng.integers(0, 12)), rng) if i % 2 else hot
    ids = np.arange(n, dtype=np.int64)
    idx = PDQIndex()
    idx.add(ids, codes)
    queries = np.stack([hot, flip(hot, 5, rng), flip(hot, 40, rng), codes[30_000]])
    for radius in (0, 10, 31, 45):
        assert idx.search(queries, radius) == brute(ids, codes, queries, radius)


def test_delta_merge_and_tombstones_across_rebuilds() -> None:
    rng = np.random.default_rng(21)
    idx = PDQIndex()
    all_ids = np.arange(80_000, dtype=np.int64)
    all_codes = rng.integers(0, 256, size=(80_000, 32), dtype=np.uint8)
    queries = np.stack([flip(all_codes[i], 9, rng) for i in range(0, 80_000, 4000)])
    idx.add(all_ids[:40_000], all_codes[:40_000])  # main part with tables
    for a in range(40_000, 80_000, 2_500):  # deltas, merged now and then
        idx.add(all_ids[a : a + 2_500], all_codes[a : a + 2_500])
        assert idx.search(queries, 31) == brute(all_ids[: a + 2_500], all_codes[: a + 2_500], queries, 31)
    gone = all_ids[::3]
    idx.remove(gone)
    keep = np.ones(80_000, bool)
    keep[::3] = False
    assert len(idx) == int(keep.sum())
    assert idx.search(queries, 31) == brute(all_ids[keep], all_codes[keep], queries, 31)
    idx.add(gone, all_codes[::3])  # back again
    assert idx.search(queries, 40) == brute(all_ids, all_codes, queries, 40)


def test_concurrent_searches_and_unaligned_queries() -> None:
    from concurrent.futures import ThreadPoolExecutor

    ids, codes, queries = planted(30_000, 16, seed=31, dists=[0, 12, 31])
    idx = PDQIndex()
    idx.add(ids, codes)
    want = brute(ids, codes, queries, 31)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: idx.search(queries, 31, threads=1), range(8)))
    assert all(g == want for g in got)
    raw = np.frombuffer(b"\0" + queries.tobytes(), dtype=np.uint8)[1:].reshape(-1, 32)  # odd address
    assert idx.search(raw, 31) == want
