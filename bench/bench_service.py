"""Service throughput on loopback with wrk: hash-only lookups against 1M PDQ hashes, and 1 MP JPEG uploads.

Goals (issue 6): lookups ≥ 1,500 requests/s with p99 ≤ 25 ms at 32 concurrent connections; uploads ≥ 80% of
the hashing bound measured in the same run (single-process hashing rate × server workers). The load generator
shares the machine's two cores with the server, which the figures include. Bounded: each run lasts --seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from servers import home_env, start_server  # noqa: E402
from vigie.banks import BankStore, EntryIn  # noqa: E402
from vigie.banks.matcher import Matcher  # noqa: E402
from vigie.media import Item  # noqa: E402
from vigie.pipeline import PipelineContext, process_item  # noqa: E402
from vigie.policy import load_policy  # noqa: E402
from vigie.service.items import Items  # noqa: E402
from vigie.service.keys import KeyStore  # noqa: E402
from vigie.settings import MediaLimits  # noqa: E402
from vigie.signals import hash_item  # noqa: E402
from vigie.store import open_db  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "bench" / "results"


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    for line in out.splitlines():
        if line.startswith("non-2xx "):
            print("  sample", line[:200])
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def lat(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return round(float(m.group(1)) * unit[m.group(2)], 2) if m else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "requests_per_s": float(rps.group(1)) if rps else 0.0,
        "p50_ms": lat("50"),
        "p99_ms": lat("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def per_second(jpegs: list[bytes], work: Callable[[bytes], object], rounds: int = 3) -> float:
    """Images per second that ``work`` handles in this process, after one warm-up call."""
    work(jpegs[0])
    t = time.perf_counter()
    for _ in range(rounds):
        for j in jpegs:
            work(j)
    return rounds * len(jpegs) / (time.perf_counter() - t)


def lua_post(path: str, key: str, content_type: str, bodies: list[bytes], tmp: Path) -> Path:
    """A wrk script that cycles through prepared request bodies."""
    lines = [
        'wrk.method = "POST"',
        f'wrk.headers["Authorization"] = "Bearer {key}"',
        f'wrk.headers["Content-Type"] = "{content_type}"',
        "bodies = {}",
    ]
    stem = path.strip("/").replace("/", "_")
    for i, b in enumerate(bodies):
        f = tmp / f"{stem}-body{i}"
        f.write_bytes(b)
        lines.append(f'local f = io.open("{f}", "rb"); bodies[{i + 1}] = f:read("*all"); f:close()')
    lines += [
        "counter = 0",
        "request = function()",
        "  counter = counter % #bodies + 1",
        f'  return wrk.format(nil, "{path}", nil, bodies[counter])',
        "end",
        "shown = 0",
        "response = function(status, headers, body)",
        "  if status >= 300 and shown < 2 then",
        "    shown = shown + 1; io.write('non-2xx ', status, ' ', body:sub(1, 300), '\\n')",
        "  end",
        "end",
    ]
    script = tmp / f"{stem}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=1_000_000, help="PDQ hashes in the bank")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="server processes")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        url = f"sqlite:///{tmp / 'vigie.db'}"
        db = open_db(url)
        store = BankStore(db)
        store.create_bank("bench")
        codes = rng.integers(0, 256, (args.size, 32), dtype=np.uint8)
        t = time.perf_counter()
        hexes = [c.tobytes().hex() for c in codes]
        for i in range(0, args.size, 100_000):
            store.add_entries("bench", [EntryIn("pdq", h) for h in hexes[i : i + 100_000]])
        fill_s = time.perf_counter() - t
        key = KeyStore(db).create(["admin"])[1]

        # lookups: half near-duplicates of bank entries (12 bits flipped), half unrelated
        bodies = []
        for i in range(200):
            q = bytearray(codes[rng.integers(args.size)].tobytes()) if i % 2 else bytearray(rng.bytes(32))
            for b in random.Random(i).sample(range(256), 12):
                q[b // 8] ^= 1 << (b % 8)
            bodies.append(json.dumps({"pdq": [q.hex()]}).encode())
        lookup_lua = lua_post("/v1/lookup", key, "application/json", bodies, tmp)

        # uploads: 1 MP JPEGs cut from the shared photos, as multipart bodies
        jpegs = []
        for p in sorted(PHOTOS.glob("*.jpg"))[:10]:
            im = Image.open(p).convert("RGB").resize((1224, 816))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=90)
            jpegs.append(buf.getvalue())
        limits = MediaLimits()
        hash_rate = per_second(jpegs, lambda j: hash_item(Item("x", j, "image/jpeg"), limits))
        # what an upload must hash to be matched: the 8 flips/rotations and the picture inside any frame
        match_hash_rate = per_second(
            jpegs, lambda j: hash_item(Item("x", j, "image/jpeg"), limits, dihedral=True)
        )
        # and the whole item flow without the service around it: hash for matching, match against the same
        # bank, and the analyzers served uploads run before answering, as `vigie scan` does per item
        inline = Items(db, load_policy(None), limits).analyzers
        flow = PipelineContext(limits=limits, matcher=Matcher.open(db), analyzers=inline)
        flow_rate = per_second(jpegs, lambda j: process_item(Item("x", j, "image/jpeg"), flow))
        boundary = "vigiebenchboundary"
        multipart = [
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + j
            + f"\r\n--{boundary}--\r\n".encode()
            for j in jpegs
        ]
        upload_lua = lua_post("/v1/items", key, f"multipart/form-data; boundary={boundary}", multipart, tmp)

        t = time.perf_counter()
        server, base = start_server(home_env(tmp, url), args=("--workers", str(args.workers)), timeout_s=300)
        start_s = time.perf_counter() - t
        try:
            wrk(base + "/v1/lookup", lookup_lua, 3, args.connections)  # warm-up
            lookup = wrk(base + "/v1/lookup", lookup_lua, args.seconds, args.connections)
            t = time.perf_counter()
            # warm-up: the first uploads load the verifier's candidate set
            wrk(base + "/v1/items", upload_lua, 3, args.connections)
            upload_warm_s = time.perf_counter() - t
            upload = wrk(base + "/v1/items", upload_lua, args.seconds, args.connections)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    bound = hash_rate * args.workers
    print(f"bank: {args.size:,} PDQ hashes (filled in {fill_s:.0f} s); server start {start_s:.1f} s")
    print(f"{'':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name, r in (("hash-only lookup", lookup), ("1 MP JPEG upload", upload)):
        print(f"{name:<22}{r['requests_per_s']:>9.0f}{r['p50_ms']:>9}{r['p99_ms']:>9}{r['non_2xx']:>9}")
    print(
        f"hashing bound: {hash_rate:.1f}/s per process × {args.workers} = {bound:.1f}/s; "
        f"uploads reach {upload['requests_per_s'] / bound:.0%}"
    )
    match_bound = match_hash_rate * args.workers
    print(
        f"hashing for matching (dihedral + frames): {match_hash_rate:.1f}/s per process × {args.workers} = "
        f"{match_bound:.1f}/s; uploads reach {upload['requests_per_s'] / match_bound:.0%}"
    )
    flow_bound = flow_rate * args.workers
    print(
        f"the item flow in-process (hash for matching, match, provenance): {flow_rate:.1f}/s per process × "
        f"{args.workers} = {flow_bound:.1f}/s; uploads reach {upload['requests_per_s'] / flow_bound:.0%}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "bench": "service",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "bank_size": args.size,
        "connections": args.connections,
        "server_workers": args.workers,
        "seconds": args.seconds,
        "lookup": lookup,
        "upload": upload,
        "upload_warmup_s": round(upload_warm_s, 1),
        "hash_per_s_one_process": round(hash_rate, 2),
        "upload_of_bound": round(upload["requests_per_s"] / bound, 3),
        "match_hash_per_s_one_process": round(match_hash_rate, 2),
        "upload_of_match_hash_bound": round(upload["requests_per_s"] / match_bound, 3),
        "item_flow_per_s_one_process": round(flow_rate, 2),
        "upload_of_item_flow_bound": round(upload["requests_per_s"] / flow_bound, 3),
    }
    (RESULTS / "service.json").write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
