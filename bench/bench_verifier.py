"""The verifier's candidate set at scale: vigie's VerifiableSet against the numpy search it replaced.

A synthetic media bank on SQLite: N media entries as `vigie bank add` makes them (a PDQ entry with packed
local features of 250 keypoints, a derived entry per crop, tilt and band cut it stores), random hashes (no images are needed to
time a candidate search). Measured in one run:
- reading the whole set (what every bank change cost before it was kept up to date), its memory;
- candidate search per query (3 query hashes, radius 90, 8 candidates), vigie's kernel against the
  reference, numpy XOR + unpackbits over all codes with a per-owner minimum (the previous implementation),
  with a check that both return the same candidates;
- one media entry added and the matcher refreshed (the set takes in only that id range), then removed.
Writes bench/results/verifier.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vigie.banks import BankStore, EntryIn, ingest
from vigie.banks.matcher import Matcher
from vigie.signals import features
from vigie.store import open_db

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DERIVED = len(ingest.DERIVED)


def reference_search(
    owners: np.ndarray, codes: np.ndarray, hexes: list[str], radius: int, limit: int
) -> list:
    """The previous implementation: distances to every code at once, a minimum per owner, a stable sort."""
    q = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(len(hexes), 32)
    d = np.unpackbits(np.bitwise_xor(q[:, None, :], codes[None, :, :]), axis=2).sum(axis=2).min(axis=0)
    uniq, inv = np.unique(owners, return_inverse=True)
    best = np.full(len(uniq), 256)
    np.minimum.at(best, inv, d)
    order = np.argsort(best, kind="stable")[:limit]
    return [(int(uniq[i]), int(best[i])) for i in order if best[i] <= radius]


def media_entry(name: str, packed: str) -> list[EntryIn]:
    out = [EntryIn("pdq", secrets.token_hex(32), external_id=name, extra={"features": packed})]
    out += [
        EntryIn("pdq", secrets.token_hex(32), external_id=name, extra={"derived": f"d{k}", "of": name})
        for k in range(DERIVED)
    ]
    return out


def rss_mb() -> float:
    """Resident memory now (the peak, where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=20_000, help="media entries in the bank")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="2,000 media entries")
    ap.add_argument("--out", type=Path, default=RESULTS / "verifier.json")
    args = ap.parse_args()
    n = 2_000 if args.quick else args.entries
    rng = np.random.default_rng(1)
    packed = features.Features(
        rng.uniform(0, 512, (250, 2)).astype(np.float32), rng.integers(0, 256, (250, 32), dtype=np.uint8)
    ).pack()
    work = Path(tempfile.mkdtemp(prefix="vigie-verifier-"))
    db = open_db(f"sqlite:///{work / 'v.db'}")
    store = BankStore(db)
    store.create_bank("known")
    batch: list[EntryIn] = []
    for i in range(n):
        batch += media_entry(f"sha256:{i:064x}", packed)
        if len(batch) >= 12_000:
            store.add_entries("known", batch)
            batch = []
    if batch:
        store.add_entries("known", batch)
    matcher = Matcher.open(db)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    matcher.verifiable.search([secrets.token_hex(32)], 90, 8)  # the first search reads the whole set
    read_s = time.perf_counter() - t0
    rss1 = rss_mb()
    arrays = matcher.verifiable._current()
    owners = arrays.owners[arrays.owner_of]
    codes = arrays.codes.view(np.uint8).reshape(-1, 32)
    queries = [[secrets.token_hex(32) for _ in range(3)] for _ in range(args.queries)]
    # a few queries near an entry, so that both searches return candidates to compare
    for k in range(0, args.queries, 5):
        c = bytearray(codes[(k * 7919) % len(codes)].tobytes())
        for b in rng.choice(256, 40, replace=False):
            c[b // 8] ^= 1 << (b % 8)
        queries[k][0] = c.hex()
    matcher.verify_candidates(queries[0], 90, 8)
    t0 = time.perf_counter()
    got = [matcher.verify_candidates(q, 90, 8) for q in queries]
    vigie_ms = (time.perf_counter() - t0) / len(queries) * 1000
    nref = min(len(queries), 10)
    t0 = time.perf_counter()
    ref = [reference_search(owners, codes, q, 90, 8) for q in queries[:nref]]
    ref_ms = (time.perf_counter() - t0) / nref * 1000
    same = all(a == b for a, b in zip(got, ref, strict=False))
    store.add_entries("known", media_entry("sha256:added", packed))
    t0 = time.perf_counter()
    matcher.refresh()
    matcher.verify_candidates(queries[0], 90, 8)
    add_ms = (time.perf_counter() - t0) * 1000
    added = [int(e.id) for e in store.iter_entries("known") if e.external_id == "sha256:added"]
    store.remove_entries("known", added)
    t0 = time.perf_counter()
    matcher.refresh()
    matcher.verify_candidates(queries[0], 90, 8)
    remove_ms = (time.perf_counter() - t0) * 1000
    result = {
        "bench": "verifier",
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "media_entries": n,
        "codes": len(codes),
        "full_read_s": round(read_s, 2),
        "full_read_rss_mb": round(rss1 - rss0, 1),
        "search_ms_vigie": round(vigie_ms, 2),
        "search_ms_reference": round(ref_ms, 2),
        "speedup": round(ref_ms / max(vigie_ms, 1e-9), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "same_candidates": same,
        "with_candidates": sum(bool(g) for g in got),
        "add_one_entry_refresh_ms": round(add_ms, 1),
        "remove_one_entry_refresh_ms": round(remove_ms, 1),
    }
    print(
        f"{n:,} media entries ({len(codes):,} codes): whole set read in {read_s:.2f} s (+{rss1 - rss0:.0f} MB); "
        f"search {vigie_ms:.2f} ms vigie vs {ref_ms:.1f} ms reference ({result['speedup']}x, same candidates: "
        f"{same}, {result['with_candidates']} of {len(got)} queries with candidates); one media entry added: "
        f"refresh + search {add_ms:.0f} ms; removed again: {remove_ms:.0f} ms"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
