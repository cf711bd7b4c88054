"""Video matching and hashing: vigie (vPDQ frames in its bank, whole-video and clip rules) vs the vpdq package.

Benign footage only: slideshows of the shared photos with pan and zoom (tests/slideshow.py). Known videos
go into a bank; queries are each known video re-encoded smaller at a low bitrate, clips of 10, 20 and 30 s,
and a 20 s clip inside unrelated footage; unrelated videos are the negatives. The reference hashes with
``vpdq.computeHash`` (1 hash per second, one thread) and matches as Meta's vPDQ brute-force matcher does:
query and compared frame shares at distance <= 31 and quality >= 50, both >= 80% (whole video), or the
query share alone >= 80% (clip rule, as HMA configures it). Hashing speed is measured at 720p on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import vpdq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from slideshow import encode, slideshow_frames  # noqa: E402
from vigie.banks import BankStore  # noqa: E402
from vigie.banks.ingest import entries_for_items  # noqa: E402
from vigie.banks.matcher import Matcher  # noqa: E402
from vigie.banks.video import video_matches  # noqa: E402
from vigie.media import Item  # noqa: E402
from vigie.settings import MediaLimits  # noqa: E402
from vigie.signals.vpdq import hash_video  # noqa: E402
from vigie.store import open_db  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "bench" / "results"
FPS = 12


def ref_features(path: Path) -> list[tuple[np.ndarray, int]]:
    feats = vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)
    return [(np.frombuffer(bytes.fromhex(f.hex), dtype=np.uint8), f.quality) for f in feats]


def ref_shares(q: list[tuple[np.ndarray, int]], t: list[tuple[np.ndarray, int]]) -> tuple[float, float]:
    qa = np.stack([h for h, qual in q if qual >= 50]) if any(qual >= 50 for _, qual in q) else None
    ta = np.stack([h for h, qual in t if qual >= 50]) if any(qual >= 50 for _, qual in t) else None
    if qa is None or ta is None:
        return 0.0, 0.0
    d = np.unpackbits(np.bitwise_xor(qa[:, None, :], ta[None, :, :]), axis=2).sum(axis=2)
    close = d <= 31
    return float(close.any(axis=1).mean()), float(close.any(axis=0).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS / "video.json")
    args = ap.parse_args()
    photos = sorted(PHOTOS.glob("*.jpg"))
    n_known, per = (2, 4) if args.quick else (4, 4)
    size = (640, 360) if args.quick else (1280, 720)
    limits = MediaLimits()
    work = Path(tempfile.mkdtemp(prefix="vigie-video-"))
    known = [
        list(slideshow_frames(photos[k * per : (k + 1) * per], 8.0, FPS, size, seed=k))
        for k in range(n_known)
    ]
    other = list(slideshow_frames(photos[16:22], 8.0, FPS, size, seed=99))  # unrelated footage, 48 s
    files: dict[str, Path] = {}

    def write(name: str, frames: list, sz: tuple[int, int] = size, bitrate: int | None = None) -> Path:
        p = work / name
        p.write_bytes(encode(frames, FPS, sz, bitrate))
        files[name] = p
        return p

    for k, fr in enumerate(known):
        write(f"known{k}.mp4", fr)
    # hashing speed at 720p (or 360p with --quick), one core: vigie vs vpdq
    p0 = files["known0.mp4"]
    duration = len(known[0]) / FPS
    t0 = time.perf_counter()
    hash_video(p0.read_bytes(), limits, 1.0)
    t_vig = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_features(p0)
    t_ref = time.perf_counter() - t0

    store = BankStore(open_db(f"sqlite:///{work / 'v.db'}"))
    store.create_bank("videos")
    for k in range(n_known):
        item = Item(f"known{k}.mp4", files[f"known{k}.mp4"].read_bytes(), "video/mp4")
        store.add_entries(
            "videos",
            [
                e
                for e in entries_for_items([item], store.get_bank("videos"), limits, {}, name_by="name")
                if not isinstance(e, str)
            ],
        )
    matcher = Matcher.open(store.db)
    ref_known = {k: ref_features(files[f"known{k}.mp4"]) for k in range(n_known)}

    small = (size[0] // 2, size[1] // 2)
    queries: list[tuple[str, int | None, str]] = []  # (file, known index or None, kind)
    rng = np.random.default_rng(5)
    for k, fr in enumerate(known):
        from PIL import Image

        write(
            f"q{k}_reencoded.mp4", [np.asarray(Image.fromarray(f).resize(small)) for f in fr], small, 300_000
        )
        queries.append((f"q{k}_reencoded.mp4", k, "whole, re-encoded at half size"))
        for secs in (10, 20, 30):
            start = int(rng.integers(0, len(fr) - secs * FPS))
            write(f"q{k}_clip{secs}.mp4", fr[start : start + secs * FPS])
            queries.append((f"q{k}_clip{secs}.mp4", k, f"clip {secs} s"))
        start = int(rng.integers(0, len(fr) - 20 * FPS))
        write(
            f"q{k}_inside.mp4", other[: 20 * FPS] + fr[start : start + 20 * FPS] + other[20 * FPS : 40 * FPS]
        )
        queries.append((f"q{k}_inside.mp4", k, "20 s clip inside unrelated footage"))
    write("neg_other.mp4", other)
    queries.append(("neg_other.mp4", None, "unrelated"))
    for j, ph in enumerate(photos[12:16]):
        write(
            f"neg{j}.mp4", list(slideshow_frames([ph, photos[(j + 17) % 22]], 10.0, FPS, size, seed=50 + j))
        )
        queries.append((f"neg{j}.mp4", None, "unrelated"))

    rows = []
    for name, k, kind in queries:
        data = files[name].read_bytes()
        frames = hash_video(data, limits, 1.0)
        found = video_matches(matcher, frames)
        hits = {int(m.labels["external_id"][5:-4]) for m in found}
        rq = ref_features(files[name])
        ref_whole, ref_clip = set(), set()
        for kk, feats in ref_known.items():
            qs, cs = ref_shares(rq, feats)
            if qs >= 0.8 and cs >= 0.8:
                ref_whole.add(kk)
            if qs >= 0.8:
                ref_clip.add(kk)
        rows.append(
            {
                "query": name,
                "kind": kind,
                "truth": k,
                "vigie_hit": k in hits if k is not None else None,
                "vigie_false": len(hits - {k}),
                "vigie_rule": [m.labels["video_match"]["rule"] for m in found],
                "ref_whole_hit": k in ref_whole if k is not None else None,
                "ref_query_share_hit": k in ref_clip if k is not None else None,
                "ref_false": len(ref_clip - {k}),
            }
        )
    kinds = sorted({r["kind"] for r in rows if r["truth"] is not None})
    print(f"{n_known} known videos ({duration:.0f} s each, {size[0]}x{size[1]}), {len(rows)} queries")
    print(f"{'query kind':38} {'n':>3} | {'vigie':>6} | {'vpdq both>=80%':>14} {'vpdq query>=80%':>15}")
    table = {}
    for kind in kinds:
        rs = [r for r in rows if r["kind"] == kind]
        v = sum(r["vigie_hit"] for r in rs) / len(rs)
        rw = sum(r["ref_whole_hit"] for r in rs) / len(rs)
        rc = sum(r["ref_query_share_hit"] for r in rs) / len(rs)
        table[kind] = {"n": len(rs), "vigie_recall": v, "ref_whole_recall": rw, "ref_query_share_recall": rc}
        print(f"{kind:38} {len(rs):>3} | {v:>6.2f} | {rw:>14.2f} {rc:>15.2f}")
    vf = sum(r["vigie_false"] for r in rows)
    rf = sum(r["ref_false"] for r in rows)
    print(
        f"false matches (all queries incl. {sum(r['truth'] is None for r in rows)} unrelated): vigie {vf}, vpdq query>=80% {rf}"
    )
    speed = {
        "video_s": duration,
        "resolution": f"{size[0]}x{size[1]}",
        "vigie_x_realtime": round(duration / t_vig, 1),
        "vpdq_x_realtime": round(duration / t_ref, 1),
    }
    print(
        f"hashing one core at {speed['resolution']}: vigie {speed['vigie_x_realtime']}x real time, vpdq {speed['vpdq_x_realtime']}x"
    )
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "bench": "video",
                "commit": git,
                "speed": speed,
                "by_kind": table,
                "false_matches": {"vigie": vf, "vpdq": rf},
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
