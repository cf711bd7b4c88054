"""Exact PDQ radius search (Hamming distance over 256-bit codes) at 10M+ scale.

Structure
    * a **main** part, immutable between rebuilds: ids sorted ascending (int64), codes (uint8, n x 32,
      the bytes of the PDQ hex string), and ``m`` multi-index-hashing tables. Table ``t`` covers one run of
      ~256/m bits (a *chunk*) and stores the row positions sorted by chunk value (``postings``, int32)
      plus the start of every chunk value's bucket (``offsets``, uint32, 2**width + 1 entries);
    * a small **delta** of recent additions, searched by a popcount scan;
    * **tombstones** (an ``alive`` byte per main row) for removed or replaced ids.
    The delta is merged into a rebuilt main part when it outgrows its limit, and on save.

Search
    For a radius ``r`` the planner gives each table a probe radius ``thr[t]`` (or skips it) with
    ``sum(thr + 1) >= r + 1``: a code within ``r`` of the query then has, by pigeonhole, at least one chunk
    within ``thr[t]`` of the query's chunk, so probing every chunk value within ``thr[t]`` bits finds it. The
    planner minimises an estimate of probe + candidate cost, and falls back to a scan when that estimate
    exceeds a scan's (large radii), or, per query, when the buckets actually hold more candidates than a scan
    would touch (skewed, non-uniform real-world hashes). Every candidate is verified with the full distance,
    so results are exactly those of brute force.

Storage
    ``save(path)`` writes a directory: ``ids.npy``, ``codes.npy``, ``postings.npy``, ``offsets.npy`` and
    ``manifest.json`` (format name, version, count and the chunk layout). ``load`` memory-maps the arrays (no
    pickle) after checking them against the manifest; damaged or missing files raise ``IndexStoreError``.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeGuard

import numpy as np

from vigie.errors import IndexStoreError
from vigie.index import _kernels as K
from vigie.index._common import (
    as_ids,
    as_rows,
    check_same_length,
    read_array,
    read_manifest,
    sorted_last_wins,
    strictly_increasing,
    unique_ids,
    write_store,
)

PDQ_BYTES = 32
PDQ_BITS = 256
KIND = "vigie-pdq-index"
VERSION = 1

#: below this many rows the main part has no tables: a scan is as fast.
MIN_TABLE_ROWS = 16_384
#: the delta is merged into the main part beyond this many rows (or main/8 when that is larger, up to the cap)
DELTA_MIN, DELTA_MAX = 4_096, 65_536
#: cost model, in units of one random memory access (probe of a bucket, or fetch of a candidate code);
#: a sequential scan costs SCAN_COST per code (popcount of 32 bytes streamed from memory).
PROBE_COST, CAND_COST, SCAN_COST = 1.0, 1.0, 0.02
#: one kernel call at a time: numba's parallel backends other than TBB/OpenMP (workqueue) abort on concurrent
#: launches from several Python threads; each call already uses every core it is given.
_KERNEL_LOCK = threading.RLock()
#: how many loads ahead the probe kernel prefetches: at 1M codes (radius 31, one thread, 9 queries) 8 ahead
#: took 0.60 ms, 12 0.58, 16 0.52, 24 0.52 (more misses in flight; beyond 16 the memory system is the limit)
PREFETCH_AHEAD = 16
#: largest probe plan (sum of probe counts over the tables) ever considered
MAX_PROBES = 1_000_000


def chunk_layout(n: int, chunks: int | None = None) -> list[tuple[int, int]]:
    """(start bit, width) of each table's chunk for ``n`` rows: about log2(n) bits per chunk (buckets of about
    one code, so a probe costs about one candidate), at most 22 bits so that the offsets (4 bytes per chunk
    value) stay within the memory budget: 12 tables of 21-22 bits at 10M rows, 13 of 19-20 bits at 1M."""
    if chunks is None:
        if n < MIN_TABLE_ROWS:
            return []
        width = min(22, max(12, round(math.log2(n))))
        chunks = math.ceil(PDQ_BITS / width)
    if chunks <= 0:
        return []
    if not 11 <= chunks <= 64:
        raise ValueError(f"chunks must be between 11 and 64 (chunks of 4 to 24 bits), got {chunks}")
    base, extra = divmod(PDQ_BITS, chunks)
    out, start = [], 0
    for t in range(chunks):
        w = base + (1 if t < extra else 0)
        out.append((start, w))
        start += w
    return out


@lru_cache(maxsize=256)
def _masks(width: int, thr: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``thr`` bits set, fewest bits first."""
    out = [0]
    for k in range(1, thr + 1):
        out.extend(sum(1 << b for b in bits) for bits in itertools.combinations(range(width), k))
    arr = np.array(out, dtype=np.int64)
    arr.setflags(write=False)
    return arr


class _Plan:
    __slots__ = ("masks", "mbase", "mlen", "probes", "thr")

    def __init__(self, thr: np.ndarray, widths: list[int]) -> None:
        self.thr = thr
        parts = [
            _masks(w, int(t)) if t >= 0 else np.empty(0, np.int64) for w, t in zip(widths, thr, strict=True)
        ]
        self.mlen = np.array([len(p) for p in parts], dtype=np.int64)
        self.mbase = np.concatenate([[0], np.cumsum(self.mlen)[:-1]]).astype(np.int64)
        self.masks = np.concatenate(parts) if parts else np.empty(0, np.int64)
        self.probes = int(self.mlen.sum())


def plan_probes(n: int, layout: list[tuple[int, int]], radius: int) -> np.ndarray | None:
    """Per-table probe radius (-1: skip the table) minimising the estimated cost, or None when a scan of the
    ``n`` codes is estimated cheaper. Greedy on convex per-table costs, so the allocation is optimal."""
    if not layout:
        return None
    widths = [w for _, w in layout]
    per_probe = [PROBE_COST + CAND_COST * n / float(1 << w) for w in widths]
    thr = np.full(len(layout), -1, dtype=np.int64)
    cost = 0.0
    probes = 0
    budget = SCAN_COST * n
    for _ in range(radius + 1):
        best, best_inc = -1, math.inf
        for t, w in enumerate(widths):
            nxt = thr[t] + 1
            if nxt > w:
                continue
            inc = math.comb(w, nxt) * per_probe[t]
            if inc < best_inc:
                best, best_inc = t, inc
        if best < 0:
            return None
        thr[best] += 1
        cost += best_inc
        probes += math.comb(widths[best], int(thr[best]))
        if cost > budget or probes > MAX_PROBES:
            return None
    return thr


@contextmanager
def _threads(n: int | None):  # type: ignore[no-untyped-def]
    if n is None:
        yield
        return
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        numba.set_num_threads(old)


def _valid_layout(layout: Any) -> TypeGuard[list[list[int]]]:
    if not isinstance(layout, list):
        return False
    if not all(isinstance(c, list) and len(c) == 2 and all(type(x) is int for x in c) for c in layout):
        return False
    if not layout:
        return True
    try:
        return [tuple(c) for c in layout] == chunk_layout(0, len(layout))
    except ValueError:
        return False


def _take_rows(codes: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``codes[order]`` for (n, 32) uint8 codes (a parallel gather: 10M rows is a 320 MB random read)."""
    codes = np.ascontiguousarray(codes)
    out = np.empty((order.shape[0], PDQ_BYTES), np.uint8)
    with _KERNEL_LOCK:
        K.gather_rows(codes.view(np.uint64), order, out.view(np.uint64))
    return out


def _check_radius(radius: Any) -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)):
        raise TypeError(f"radius must be an integer, got {type(radius).__name__}")
    r = int(radius)
    if r < 0:
        raise ValueError(f"radius must be >= 0, got {r}")
    return min(r, PDQ_BITS)


def _scan(codes: np.ndarray, alive: np.ndarray, q64: np.ndarray, radius: int) -> tuple[np.ndarray, ...]:
    """(query index, row position, distance) of every live row within ``radius``, by blocked scan."""
    import numba

    n, nq = codes.shape[0], q64.shape[0]
    if n == 0 or nq == 0:
        e = np.empty(0, np.int64)
        return e, e, e
    c64 = codes.view(np.uint64)
    qgroup = 32
    ngroups = -(-nq // qgroup)
    nslices = max(1, min(-(-4 * numba.get_num_threads() // ngroups), n // 8192))
    ntasks = ngroups * nslices
    cap = 256
    while True:
        out_q = np.empty((ntasks, cap), np.int32)
        out_pos = np.empty((ntasks, cap), np.int32)
        out_d = np.empty((ntasks, cap), np.int32)
        out_n = np.zeros(ntasks, np.int64)
        K.scan_search(c64, alive, q64, radius, qgroup, nslices, cap, out_q, out_pos, out_d, out_n)
        if out_n.max() <= cap:
            break
        cap = int(out_n.max())
    mask = np.arange(cap) < out_n[:, None]
    return out_q[mask].astype(np.int64), out_pos[mask].astype(np.int64), out_d[mask].astype(np.int64)


class PDQIndex:
    """Exact radius search over PDQ hashes: ids int64, hashes uint8 (n, 32) (``bytes.fromhex`` of the hex).

    ``search`` returns, per query, the (id, distance) pairs within the radius sorted by distance then id.
    Re-adding an existing id replaces its hash. Not thread-safe for concurrent writers; concurrent searches
    on an index that is not being modified are fine.
    """

    def __init__(self, *, chunks: int | None = None) -> None:
        self._chunks = chunks
        self._set_main(np.empty(0, np.int64), np.empty((0, PDQ_BYTES), np.uint8))
        self._dcap = 0
        self._d_ids = np.empty(0, np.int64)
        self._d_codes = np.empty((0, PDQ_BYTES), np.uint8)
        self._d_alive = np.empty(0, np.uint8)
        self._dn = 0
        self._d_live = 0

    # ------------------------------------------------------------------------------------------ state

    def _set_main(
        self,
        ids: np.ndarray,
        codes: np.ndarray,
        layout: list[tuple[int, int]] | None = None,
        postings: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
    ) -> None:
        """Install a main part (ids sorted, unique); build its tables unless given."""
        n = ids.shape[0]
        self._ids = ids
        self._codes = codes
        self._alive = np.ones(n, np.uint8)
        self._m_live = n
        self._plans: dict[int, _Plan | None] = {}
        if layout is None:
            layout = chunk_layout(n, self._chunks) if n >= MIN_TABLE_ROWS or self._chunks else []
            if n == 0:
                layout = []
        self._layout = layout
        starts = np.array([s for s, _ in layout], np.int64)
        widths = np.array([w for _, w in layout], np.int64)
        sizes = (1 << widths) + 1
        obase = (
            np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if layout else np.empty(0, np.int64)
        )
        self._starts, self._widths, self._obase = starts, widths, obase
        if postings is None or offsets is None:
            postings = np.empty((len(layout), n), np.int32)
            offsets = np.empty(int(sizes.sum()), np.uint32)
            if layout:
                with _KERNEL_LOCK:
                    K.build_tables(codes.view(np.uint64), starts, widths, obase, offsets, postings)
        self._postings = postings
        self._offsets = offsets

    def __len__(self) -> int:
        return self._m_live + self._d_live

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays (main part, tables, tombstones and delta)."""
        arrays = (self._ids, self._codes, self._alive, self._postings, self._offsets)
        delta = (self._d_ids, self._d_codes, self._d_alive)
        return int(sum(a.nbytes for a in arrays + delta))

    def _delta_limit(self) -> int:
        return min(DELTA_MAX, max(DELTA_MIN, self._ids.shape[0] // 8))

    def _kill(self, ids: np.ndarray) -> None:
        """Tombstone every live row with one of ``ids`` (main and delta)."""
        n = self._ids.shape[0]
        if n:
            pos = np.searchsorted(self._ids, ids)
            inside = pos < n
            pos = pos[inside]
            pos = pos[self._ids[pos] == ids[inside]]
            if pos.size:
                pos = pos[self._alive[pos] == 1]
                self._alive[pos] = 0
                self._m_live -= int(pos.size)
        if self._d_live:
            hit = np.flatnonzero(np.isin(self._d_ids[: self._dn], ids) & (self._d_alive[: self._dn] == 1))
            if hit.size:
                self._d_alive[hit] = 0
                self._d_live -= int(hit.size)

    def _rebuild(self, new_ids: np.ndarray | None = None, new_codes: np.ndarray | None = None) -> None:
        """New main part from the live main rows, the live delta rows and ``new_*`` (ids all distinct)."""
        n = self._ids.shape[0]
        if self._m_live == n:
            m_ids, m_codes = self._ids, self._codes
        else:
            keep = np.flatnonzero(self._alive)
            m_ids, m_codes = self._ids[keep], self._codes[keep]
        small_ids = [self._d_ids[: self._dn][self._d_alive[: self._dn] == 1]]
        small_codes = [self._d_codes[: self._dn][self._d_alive[: self._dn] == 1]]
        if new_ids is not None and new_codes is not None:
            small_ids.append(new_ids)
            small_codes.append(new_codes)
        s_ids = np.concatenate(small_ids)
        s_codes = np.concatenate(small_codes)
        # drop the old tables and delta before building the new ones (peak memory)
        self._postings = np.empty((0, 0), np.int32)
        self._offsets = np.empty(0, np.uint32)
        self._clear_delta()
        if not strictly_increasing(s_ids):
            order = np.argsort(s_ids, kind="stable")
            s_ids, s_codes = s_ids[order], _take_rows(s_codes, order)
        if m_ids.size == 0:
            ids, codes = s_ids, s_codes
        else:
            at = np.searchsorted(m_ids, s_ids) + np.arange(s_ids.size)
            total = m_ids.size + s_ids.size
            is_main = np.ones(total, bool)
            is_main[at] = False
            ids = np.empty(total, np.int64)
            ids[is_main] = m_ids
            ids[at] = s_ids
            codes = np.empty((total, PDQ_BYTES), np.uint8)
            codes[is_main] = m_codes
            codes[at] = s_codes
        del m_ids, m_codes
        self._set_main(ids, codes)

    def _clear_delta(self) -> None:
        self._dcap = 0
        self._d_ids = np.empty(0, np.int64)
        self._d_codes = np.empty((0, PDQ_BYTES), np.uint8)
        self._d_alive = np.empty(0, np.uint8)
        self._dn = 0
        self._d_live = 0

    def _append_delta(self, ids: np.ndarray, codes: np.ndarray) -> None:
        need = self._dn + ids.size
        if need > self._dcap:
            cap = max(1024, need, 2 * self._dcap)
            d_ids = np.empty(cap, np.int64)
            d_codes = np.empty((cap, PDQ_BYTES), np.uint8)
            d_alive = np.zeros(cap, np.uint8)
            d_ids[: self._dn] = self._d_ids[: self._dn]
            d_codes[: self._dn] = self._d_codes[: self._dn]
            d_alive[: self._dn] = self._d_alive[: self._dn]
            self._d_ids, self._d_codes, self._d_alive, self._dcap = d_ids, d_codes, d_alive, cap
        self._d_ids[self._dn : need] = ids
        self._d_codes[self._dn : need] = codes
        self._d_alive[self._dn : need] = 1
        self._dn = need
        self._d_live += ids.size

    # -------------------------------------------------------------------------------------------- API

    def add(self, ids: Any, hashes: Any) -> None:
        """Add (or replace) ``ids`` with their ``hashes`` (uint8, n x 32)."""
        ids = as_ids(ids)
        codes = as_rows(hashes, PDQ_BYTES, "hashes")
        check_same_length(ids, codes, "hashes")
        if ids.size == 0:
            return
        ids, codes = sorted_last_wins(ids, codes, _take_rows)
        self._kill(ids)
        dead = self._ids.shape[0] - self._m_live
        if (
            self._d_live + ids.size > self._delta_limit()
            or self._dn + ids.size > 2 * self._delta_limit()
            or (dead > MIN_TABLE_ROWS and dead > self._ids.shape[0] // 2)
        ):
            self._rebuild(ids, codes)
        else:
            self._append_delta(ids, codes)

    def remove(self, ids: Any) -> None:
        """Remove ``ids`` (unknown ids are ignored)."""
        ids = as_ids(ids)
        if ids.size == 0 or not len(self):
            return
        self._kill(unique_ids(ids))
        dead = self._ids.shape[0] - self._m_live
        if dead > MIN_TABLE_ROWS and dead > self._ids.shape[0] // 2:
            self._rebuild()

    def _plan(self, radius: int) -> _Plan | None:
        if radius not in self._plans:
            thr = plan_probes(self._ids.shape[0], self._layout, radius)
            self._plans[radius] = None if thr is None else _Plan(thr, [w for _, w in self._layout])
        return self._plans[radius]

    def search(self, queries: Any, radius: int, *, threads: int | None = None) -> list[list[tuple[int, int]]]:
        """Per query, every (id, distance) with Hamming distance <= ``radius``, sorted by distance then id.

        ``threads`` caps the worker threads for this call (default: numba's, i.e. all cores)."""
        q = as_rows(queries, PDQ_BYTES, "queries")
        radius = _check_radius(radius)
        nq = q.shape[0]
        if nq == 0:
            return []
        if q.ctypes.data % 8:
            q = q.copy()  # 8-byte aligned for the uint64 view
        q64 = q.view(np.uint64)
        parts_q, parts_id, parts_d = [], [], []
        with _KERNEL_LOCK, _threads(threads):
            if self._m_live:
                plan = self._plan(radius)
                if plan is None:
                    qi, pos, d = _scan(self._codes, self._alive, q64, radius)
                else:
                    qi, pos, d = self._mih(plan, q64, radius)
                parts_q.append(qi)
                parts_id.append(self._ids[pos])
                parts_d.append(d)
            if self._d_live:
                qi, pos, d = _scan(self._d_codes[: self._dn], self._d_alive[: self._dn], q64, radius)
                parts_q.append(qi)
                parts_id.append(self._d_ids[pos])
                parts_d.append(d)
        if not parts_q:
            return [[] for _ in range(nq)]
        qi = np.concatenate(parts_q)
        hid = np.concatenate(parts_id)
        d = np.concatenate(parts_d)
        order = np.lexsort((hid, d, qi))
        bounds = np.searchsorted(qi[order], np.arange(nq + 1)).tolist()
        hid_l = hid[order].tolist()
        d_l = d[order].tolist()
        return [list(zip(hid_l[a:b], d_l[a:b], strict=True)) for a, b in itertools.pairwise(bounds)]

    def _mih(self, plan: _Plan, q64: np.ndarray, radius: int) -> tuple[np.ndarray, ...]:
        n, nq = self._ids.shape[0], q64.shape[0]
        c64 = self._codes.view(np.uint64)
        scan_limit = int(SCAN_COST / CAND_COST * n)
        todo = np.arange(nq)
        cap = 32
        res_q, res_pos, res_d = [], [], []
        while todo.size:
            qq = np.ascontiguousarray(q64[todo])
            out_pos = np.empty((todo.size, cap), np.int32)
            out_d = np.empty((todo.size, cap), np.int32)
            out_n = np.zeros(todo.size, np.int64)
            scanned = np.zeros(todo.size, np.uint8)
            K.mih_search(
                c64,
                self._alive,
                self._postings,
                self._offsets,
                self._obase,
                self._starts,
                self._widths,
                plan.thr,
                plan.masks,
                plan.mbase,
                plan.mlen,
                qq,
                radius,
                scan_limit,
                cap,
                out_pos,
                out_d,
                out_n,
                scanned,
                PREFETCH_AHEAD,
            )
            ok = out_n <= cap
            mask = np.arange(cap) < np.where(ok, out_n, 0)[:, None]
            res_q.append(np.repeat(todo, np.where(ok, out_n, 0)))
            res_pos.append(out_pos[mask].astype(np.int64))
            res_d.append(out_d[mask].astype(np.int64))
            if ok.all():
                break
            cap = int(out_n[~ok].max())
            todo = todo[~ok]
        return np.concatenate(res_q), np.concatenate(res_pos), np.concatenate(res_d)

    # ------------------------------------------------------------------------------------------ store

    def compact(self) -> None:
        """Merge the delta and drop tombstones now (save does this)."""
        if self._d_live or self._dn or self._m_live != self._ids.shape[0]:
            self._rebuild()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to directory ``path`` (replaced atomically if it exists)."""
        self.compact()
        meta = {"count": int(self._ids.shape[0]), "chunks": [list(c) for c in self._layout]}
        arrays = {
            "ids": self._ids,
            "codes": self._codes,
            "postings": self._postings,
            "offsets": self._offsets,
        }
        write_store(path, KIND, VERSION, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = True) -> PDQIndex:
        """Open an index written by :meth:`save`; arrays are memory-mapped unless ``mmap`` is False."""
        manifest = read_manifest(path, KIND, (VERSION,))
        where = f"{os.fspath(path)}"
        n = manifest.get("count")
        layout = manifest.get("chunks")
        if not isinstance(n, int) or n < 0:
            raise IndexStoreError(f"{where}: corrupt manifest (bad count {n!r})")
        if not _valid_layout(layout):
            raise IndexStoreError(f"{where}: corrupt manifest (bad chunk layout {layout!r})")
        layout_t = [(int(s), int(w)) for s, w in layout]
        ids = np.asarray(read_array(path, manifest, "ids", mmap))
        codes = np.asarray(read_array(path, manifest, "codes", mmap))
        postings = np.asarray(read_array(path, manifest, "postings", mmap))
        offsets = np.asarray(read_array(path, manifest, "offsets", mmap))
        if ids.dtype != np.int64 or ids.shape != (n,):
            raise IndexStoreError(f"{where}: ids.npy does not hold {n} int64 ids")
        if codes.dtype != np.uint8 or codes.shape != (n, PDQ_BYTES):
            raise IndexStoreError(f"{where}: codes.npy does not hold {n} x {PDQ_BYTES} bytes")
        if n > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise IndexStoreError(f"{where}: ids.npy is not strictly increasing; the index is corrupt")
        sizes = [(1 << w) + 1 for _, w in layout_t]
        if postings.dtype != np.int32 or postings.shape != (len(layout_t), n):
            raise IndexStoreError(f"{where}: postings.npy has the wrong type or shape")
        if offsets.dtype != np.uint32 or offsets.shape != (sum(sizes),):
            raise IndexStoreError(f"{where}: offsets.npy has the wrong type or shape")
        base = 0
        for t, size in enumerate(sizes):
            off = offsets[base : base + size]
            base += size
            if off[0] != 0 or off[-1] != n or not bool(np.all(off[1:] >= off[:-1])):
                raise IndexStoreError(f"{where}: offsets.npy table {t} is inconsistent; the index is corrupt")
            if n and (int(postings[t].min()) < 0 or int(postings[t].max()) >= n):
                raise IndexStoreError(f"{where}: postings.npy table {t} points outside the index; corrupt")
        idx = cls()
        if not layout_t and n >= MIN_TABLE_ROWS:
            idx._set_main(ids, codes)  # no tables stored: build them
        else:
            idx._set_main(ids, codes, layout_t, postings, offsets)
        return idx
