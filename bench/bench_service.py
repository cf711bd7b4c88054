"""Service throughput on loopback with wrk: hash-only lookups against 1M PDQ hashes, and 1 MP JPEG uploads.

Goals (issue 6): lookups ≥ 1,500 requests/s with p99 ≤ 25 ms at 32 concurrent connections; uploads ≥ 80% of
the hashing bound measured in the same run (single-process hashing rate × server workers). The load generator
shares the machine's two cores with the server, which the figures include. Bounded: each run lasts --seconds.

``--media-entries N`` also puts N media entries (random crops of the shared photos the uploads are not cut
from, added as ``vigie bank add`` adds them: derived crops and tilts, keypoints) beside the hash list. Uploads
then pay what a platform's own bank of confirmed media costs: those landing within the verifier's band of an
entry are verified, although none is in the bank.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from servers import home_env, start_server  # noqa: E402
from vigie.banks import BankStore, EntryIn  # noqa: E402
from vigie.banks.ingest import entries_for_items  # noqa: E402
from vigie.banks.matcher import Matcher  # noqa: E402
from vigie.banks.verify import candidates, mirror_candidates  # noqa: E402
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


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used so far by the live processes of one process group (the server and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ..., utime (12), stime (13)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
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
        "load_generator_cpu_s": round(wrk_cpu, 2),
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


def add_media_entries(store: BankStore, count: int, limits: MediaLimits, skip: int) -> float:
    """``count`` media entries in a bank of their own, from the photos after the first ``skip``; seconds."""
    t = time.perf_counter()
    store.create_bank("media")
    bank = store.get_bank("media")
    photos = []
    for p in sorted(PHOTOS.glob("*.jpg"))[skip:]:
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((1600, 1600))
            photos.append(im)
    rng = random.Random(1)
    items = []
    for k in range(count):
        im = photos[k % len(photos)]
        f = rng.uniform(0.4, 1.0)
        w, h = round(im.width * f), round(im.height * f)
        x, y = rng.randint(0, im.width - w), rng.randint(0, im.height - h)
        buf = io.BytesIO()
        im.crop((x, y, x + w, y + h)).save(buf, "JPEG", quality=90)
        items.append(Item(f"media{k}.jpg", buf.getvalue(), "image/jpeg"))
    found = entries_for_items(items, bank, limits, {})
    store.add_entries("media", [e for e in found if isinstance(e, EntryIn)])
    return time.perf_counter() - t


def with_candidates(matcher: Matcher, jpeg: bytes, limits: MediaLimits) -> bool:
    """Whether an upload has a media entry within the verifier's band, so pays for verification."""
    sig = hash_item(Item("x", jpeg, "image/jpeg"), limits, dihedral=True)
    return bool(sig.pdq and (candidates(matcher, sig) or mirror_candidates(matcher, sig)))


def ref_pdq(jpeg: bytes) -> object:
    with Image.open(io.BytesIO(jpeg)) as im:
        return pdqhash.compute(np.asarray(im.convert("RGB")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=1_000_000, help="PDQ hashes in the bank")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="server processes")
    ap.add_argument("--media-entries", type=int, default=0, help="media entries beside the hash list")
    ap.add_argument("--out", type=Path, default=RESULTS / "service.json")
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
        limits = MediaLimits()
        upload_photos = 10
        media_s = (
            add_media_entries(store, args.media_entries, limits, upload_photos) if args.media_entries else 0.0
        )

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
        for p in sorted(PHOTOS.glob("*.jpg"))[:upload_photos]:
            im = Image.open(p).convert("RGB").resize((1224, 816))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=90)
            jpegs.append(buf.getvalue())
        hash_rate = per_second(jpegs, lambda j: hash_item(Item("x", j, "image/jpeg"), limits))
        # for scale: the reference PDQ (pdqhash, Meta's C++) on the same JPEGs, decoded by Pillow
        ref_rate = per_second(jpegs, ref_pdq)
        # what an upload must hash to be matched: the 8 flips/rotations and the picture inside any frame
        match_hash_rate = per_second(
            jpegs, lambda j: hash_item(Item("x", j, "image/jpeg"), limits, dihedral=True)
        )
        # and the whole item flow without the service around it: hash for matching, match against the same
        # bank, and the analyzers served uploads run before answering, as `vigie scan` does per item
        inline = Items(db, load_policy(None), limits).analyzers
        matcher = Matcher.open(db)
        flow = PipelineContext(limits=limits, matcher=matcher, analyzers=inline)
        flow_rate = per_second(jpegs, lambda j: process_item(Item("x", j, "image/jpeg"), flow))
        verified = sum(bool(with_candidates(matcher, j, limits)) for j in jpegs)
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
            cpu0 = group_cpu_s(server.pid)
            upload = wrk(base + "/v1/items", upload_lua, args.seconds, args.connections)
            upload["server_cpu_s"] = round(group_cpu_s(server.pid) - cpu0, 2)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    bound = hash_rate * args.workers
    print(f"bank: {args.size:,} PDQ hashes (filled in {fill_s:.0f} s); server start {start_s:.1f} s")
    if args.media_entries:
        print(
            f"and {args.media_entries:,} media entries (added in {media_s:.0f} s): {verified} of the "
            f"{len(jpegs)} upload images have a verification candidate"
        )
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
    done = upload["requests_per_s"] * args.seconds
    if done:
        print(
            f"CPU per upload: server {upload['server_cpu_s'] / done * 1000:.2f} ms, load generator "
            f"{upload['load_generator_cpu_s'] / done * 1000:.2f} ms (of the {os.cpu_count()} cores' "
            f"{(os.cpu_count() or 1) / max(upload['requests_per_s'], 1e-9) * 1000:.2f} ms per upload)"
        )
    ref_bound = ref_rate * args.workers
    print(
        f"for scale, the reference pdqhash alone: {ref_rate:.1f}/s per process × {args.workers} = "
        f"{ref_bound:.1f}/s; uploads reach {upload['requests_per_s'] / ref_bound:.0%}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "bench": "service",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "bank_size": args.size,
        "connections": args.connections,
        "media_entries": args.media_entries,
        "upload_images_with_verification_candidates": verified,
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
        "reference_pdqhash_per_s_one_process": round(ref_rate, 2),
        "upload_of_reference_pdqhash_bound": round(upload["requests_per_s"] / ref_bound, 3),
    }
    args.out.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
