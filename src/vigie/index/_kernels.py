"""Compiled kernels (numba) for the PDQ index: popcount scan, multi-index-hashing probe, table build.

Codes are 256-bit rows viewed as four little-endian uint64 words; bit ``k`` of a code is bit ``k % 64`` of
word ``k // 64``. A chunk is a run of ``width`` bits starting at bit ``start`` (it may straddle two words).
Every kernel is exact: the probe kernel verifies each candidate with the full 256-bit distance.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _ctpop64(typingctx, x):  # type: ignore[no-untyped-def]
    """LLVM's ctpop on uint64 (one POPCNT instruction on x86-64)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.ctpop.i64")
        return builder.call(fn, [args[0]])

    return sig, codegen


def _prefetch_codegen(context, builder, aty, ary_val, idx_vals, idx_tys):  # type: ignore[no-untyped-def]
    ary = context.make_array(aty)(context, builder, ary_val)
    idx = [context.cast(builder, v, t, types.intp) for v, t in zip(idx_vals, idx_tys, strict=True)]
    ptr = cgutils.get_item_pointer(context, builder, aty, ary, idx)
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
    return context.get_dummy_value()


@intrinsic
def _prefetch1(typingctx, arr, i):  # type: ignore[no-untyped-def]
    """Prefetch the cache line holding ``arr[i]`` (1-D array) for reading."""
    sig = types.void(arr, i)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return _prefetch_codegen(context, builder, signature.args[0], args[0], args[1:], signature.args[1:])

    return sig, codegen


@intrinsic
def _prefetch2(typingctx, arr, i, j):  # type: ignore[no-untyped-def]
    """Prefetch the cache line holding ``arr[i, j]`` (2-D array) for reading."""
    sig = types.void(arr, i, j)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return _prefetch_codegen(context, builder, signature.args[0], args[0], args[1:], signature.args[1:])

    return sig, codegen


@njit(inline="always")
def popcount64(x: np.uint64) -> int:
    return int(_ctpop64(x))  # type: ignore[call-arg]  # an intrinsic: numba passes the typing context


@njit(inline="always")
def _chunk(w0, w1, w2, w3, start, width):  # type: ignore[no-untyped-def]
    """Value of the ``width``-bit chunk at bit ``start`` of the code (w0..w3)."""
    wi = start >> 6
    off = start & 63
    if wi == 0:
        a, b = w0, w1
    elif wi == 1:
        a, b = w1, w2
    elif wi == 2:
        a, b = w2, w3
    else:
        a, b = w3, np.uint64(0)
    v = a >> np.uint64(off)
    if off + width > 64:
        v |= b << np.uint64(64 - off)
    return np.int64(v & np.uint64((1 << width) - 1))


@njit(cache=True, nogil=True)
def chunk_values(codes64, start, width, out):  # type: ignore[no-untyped-def]
    for i in range(codes64.shape[0]):
        out[i] = _chunk(codes64[i, 0], codes64[i, 1], codes64[i, 2], codes64[i, 3], start, width)


@njit(cache=True, nogil=True)
def _build_one(codes64, start, width, offsets, postings):  # type: ignore[no-untyped-def]
    """Counting sort of row positions by chunk value: ``offsets`` (2**width + 1) and ``postings`` (n)."""
    n = codes64.shape[0]
    vals = np.empty(n, dtype=np.uint32)
    nb = offsets.shape[0] - 1
    counts = np.zeros(nb + 1, dtype=np.int64)
    for i in range(n):
        v = _chunk(codes64[i, 0], codes64[i, 1], codes64[i, 2], codes64[i, 3], start, width)
        vals[i] = v
        counts[v + 1] += 1
    acc = 0
    for v in range(nb + 1):
        acc += counts[v]
        counts[v] = acc
        offsets[v] = acc
    for i in range(n):
        v = vals[i]
        postings[counts[v]] = i
        counts[v] += 1


@njit(cache=True, nogil=True, parallel=True)
def build_tables(codes64, starts, widths, obase, offsets, postings):  # type: ignore[no-untyped-def]
    for t in prange(starts.shape[0]):
        nb = 1 << widths[t]
        _build_one(codes64, starts[t], widths[t], offsets[obase[t] : obase[t] + nb + 1], postings[t])


SCAN_BLOCK = 2048


@njit(inline="always")
def _dist(w0, w1, w2, w3, a0, a1, a2, a3):  # type: ignore[no-untyped-def]
    return popcount64(w0 ^ a0) + popcount64(w1 ^ a1) + popcount64(w2 ^ a2) + popcount64(w3 ^ a3)


@njit(cache=True, nogil=True)
def _scan_range(codes64, alive, queries64, q0, q1, i0, i1, radius, cap, row, out_q, out_pos, out_d):  # type: ignore[no-untyped-def]
    """Hits of queries [q0, q1) among rows [i0, i1), written to output row ``row``; returns the count.

    Rows are taken a block at a time; with several queries the block is first transposed into four word
    arrays so that the distance loop is plain vertical SIMD (AVX-512 VPOPCNTQ where the CPU has it): a
    counting pass finds whether a (query, block) pair has any hit at all, the rare ones are rescanned."""
    k = 0
    nq = q1 - q0
    w = np.empty((4, SCAN_BLOCK), dtype=np.uint64)
    for b0 in range(i0, i1, SCAN_BLOCK):
        b1 = min(i1, b0 + SCAN_BLOCK)
        nb = b1 - b0
        if nq >= 4:
            for i in range(nb):
                w[0, i] = codes64[b0 + i, 0]
                w[1, i] = codes64[b0 + i, 1]
                w[2, i] = codes64[b0 + i, 2]
                w[3, i] = codes64[b0 + i, 3]
            w0 = w[0]
            w1 = w[1]
            w2 = w[2]
            w3 = w[3]
            for q in range(q0, q1):
                a0 = queries64[q, 0]
                a1 = queries64[q, 1]
                a2 = queries64[q, 2]
                a3 = queries64[q, 3]
                hits = 0
                for i in range(nb):
                    hits += _dist(w0[i], w1[i], w2[i], w3[i], a0, a1, a2, a3) <= radius
                if hits == 0:
                    continue
                for i in range(nb):
                    d = _dist(w0[i], w1[i], w2[i], w3[i], a0, a1, a2, a3)
                    if d <= radius and alive[b0 + i]:
                        if k < cap:
                            out_q[row, k] = q
                            out_pos[row, k] = b0 + i
                            out_d[row, k] = d
                        k += 1
        else:
            for q in range(q0, q1):
                a0 = queries64[q, 0]
                a1 = queries64[q, 1]
                a2 = queries64[q, 2]
                a3 = queries64[q, 3]
                hits = 0
                for i in range(b0, b1):
                    hits += (
                        _dist(codes64[i, 0], codes64[i, 1], codes64[i, 2], codes64[i, 3], a0, a1, a2, a3)
                        <= radius
                    )
                if hits == 0:
                    continue
                for i in range(b0, b1):
                    d = _dist(codes64[i, 0], codes64[i, 1], codes64[i, 2], codes64[i, 3], a0, a1, a2, a3)
                    if d <= radius and alive[i]:
                        if k < cap:
                            out_q[row, k] = q
                            out_pos[row, k] = i
                            out_d[row, k] = d
                        k += 1
    return k


@njit(cache=True, nogil=True, parallel=True)
def scan_search(codes64, alive, queries64, radius, qgroup, nslices, cap, out_q, out_pos, out_d, out_n):  # type: ignore[no-untyped-def]
    """Brute-force popcount scan. Task ``k`` (a group of ``qgroup`` queries x one of ``nslices`` row slices)
    writes its hits to row ``k`` of the outputs; ``out_n[k]`` is its true hit count even beyond ``cap``
    (the caller then runs again with a larger cap)."""
    nq = queries64.shape[0]
    n = codes64.shape[0]
    ngroups = (nq + qgroup - 1) // qgroup
    slice_len = (n + nslices - 1) // nslices
    for task in prange(ngroups * nslices):
        g = task // nslices
        s = task % nslices
        q0 = g * qgroup
        q1 = min(nq, q0 + qgroup)
        i0 = s * slice_len
        i1 = min(n, i0 + slice_len)
        out_n[task] = _scan_range(
            codes64, alive, queries64, q0, q1, i0, i1, radius, cap, task, out_q, out_pos, out_d
        )


@njit(cache=True, nogil=True, parallel=True)
def mih_search(  # type: ignore[no-untyped-def]
    codes64,
    alive,
    postings,
    offsets,
    obase,
    starts,
    widths,
    thr,
    masks,
    mbase,
    mlen,
    queries64,
    radius,
    scan_limit,
    cap,
    out_pos,
    out_d,
    out_n,
    scanned,
    ahead,
):
    """Multi-index hashing: table ``t`` is probed at every chunk value within ``thr[t]`` bits of the query's
    chunk (``thr[t] < 0``: not probed). The plan satisfies sum(thr + 1) >= radius + 1, so by pigeonhole every
    code within ``radius`` lies in a probed bucket. A code found through table ``t`` is reported only if no
    earlier probed table would also have found it (no duplicates, no dedup set). A query whose buckets hold
    more than ``scan_limit`` candidates (skewed data) is answered by a plain scan instead."""
    nq = queries64.shape[0]
    m = starts.shape[0]
    n = codes64.shape[0]
    qrow = np.empty(out_pos.shape, dtype=np.int32)  # query numbers from the scan fallback (unused)
    nprobe = 0
    for t in range(m):
        if thr[t] >= 0:
            nprobe += mlen[t]
    for q in prange(nq):
        a0 = queries64[q, 0]
        a1 = queries64[q, 1]
        a2 = queries64[q, 2]
        a3 = queries64[q, 3]
        qch = np.empty(m, dtype=np.int64)
        for t in range(m):
            qch[t] = _chunk(a0, a1, a2, a3, starts[t], widths[t])
        # phase 1: bucket bounds of every probe (independent loads, prefetched, branch-free)
        paddr = np.empty(nprobe, dtype=np.int64)
        ptab = np.empty(nprobe, dtype=np.int32)
        np_ = 0
        for t in range(m):
            if thr[t] < 0:
                continue
            base = obase[t]
            v = qch[t]
            for j in range(mbase[t], mbase[t] + mlen[t]):
                paddr[np_] = base + (v ^ masks[j])
                ptab[np_] = t
                np_ += 1
        blo = np.empty(nprobe, dtype=np.int64)
        bhi = np.empty(nprobe, dtype=np.int64)
        btab = np.empty(nprobe, dtype=np.int32)
        nb = 0
        total = 0
        for j in range(nprobe):
            if j + ahead < nprobe:
                _prefetch1(offsets, paddr[j + ahead])
            pa = paddr[j]
            lo = np.int64(offsets[pa])
            hi = np.int64(offsets[pa + 1])
            blo[nb] = lo
            bhi[nb] = hi
            btab[nb] = ptab[j]
            nb += hi > lo
            total += hi - lo
        k = 0
        if total > scan_limit:
            scanned[q] = 1
            k = _scan_range(codes64, alive, queries64, q, q + 1, 0, n, radius, cap, q, qrow, out_pos, out_d)
            out_n[q] = k
            continue
        cpos = np.empty(total, dtype=np.int32)
        ctab = np.empty(total, dtype=np.int32)
        c = 0
        for b in range(nb):
            if b + ahead < nb:
                _prefetch2(postings, btab[b + ahead], blo[b + ahead])
            t = btab[b]
            post = postings[t]
            for j in range(blo[b], bhi[b]):
                cpos[c] = post[j]
                ctab[c] = t
                c += 1
        for j in range(total):
            if j + ahead < total:
                _prefetch2(codes64, cpos[j + ahead], 0)
            i = cpos[j]
            d = (
                popcount64(codes64[i, 0] ^ a0)
                + popcount64(codes64[i, 1] ^ a1)
                + popcount64(codes64[i, 2] ^ a2)
                + popcount64(codes64[i, 3] ^ a3)
            )
            if d > radius or not alive[i]:
                continue
            t = ctab[j]
            dup = False
            for u in range(t):
                if thr[u] >= 0:
                    cu = _chunk(
                        codes64[i, 0], codes64[i, 1], codes64[i, 2], codes64[i, 3], starts[u], widths[u]
                    )
                    if popcount64(np.uint64(cu ^ qch[u])) <= thr[u]:
                        dup = True
                        break
            if dup:
                continue
            if k < cap:
                out_pos[q, k] = i
                out_d[q, k] = d
            k += 1
        out_n[q] = k


@njit(cache=True, nogil=True, parallel=True)
def gather_rows(src64, order, out64):  # type: ignore[no-untyped-def]
    """out64[i] = src64[order[i]] for (n, 4) uint64 code arrays, in parallel."""
    for i in prange(order.shape[0]):
        j = order[i]
        out64[i, 0] = src64[j, 0]
        out64[i, 1] = src64[j, 1]
        out64[i, 2] = src64[j, 2]
        out64[i, 3] = src64[j, 3]


@njit(cache=True, nogil=True)
def nearest_per_owner(codes64, owner_of, queries64, out):  # type: ignore[no-untyped-def]
    """``out[owner_of[i]]`` lowered to the distance from code i to its nearest query, for every code.

    Brute force with no temporaries: the verifier's candidate set is searched at a radius far beyond what
    multi-index hashing can prune. ``out`` comes filled with 256."""
    nq = queries64.shape[0]
    for i in range(codes64.shape[0]):
        w0, w1, w2, w3 = codes64[i, 0], codes64[i, 1], codes64[i, 2], codes64[i, 3]
        best = out[owner_of[i]]
        for q in range(nq):
            d = _dist(w0, w1, w2, w3, queries64[q, 0], queries64[q, 1], queries64[q, 2], queries64[q, 3])
            if d < best:
                best = d
        out[owner_of[i]] = best
