"""Video matching and hashing: vigie (vPDQ frames in its bank, whole-video and clip rules) vs the vpdq package.

Benign footage only: slideshows of the shared photos with pan and zoom (tests/slideshow.py). Known videos
go into a bank. Queries are each known video re-encoded (smaller at a low bitrate; 480p at a third of the
frame rate), clips of 10, 20 and 30 s, a 20 s clip inside unrelated footage, and 20 s clips altered the
way re-uploads are: mirrored, set in a 4:3 or a 9:16 portrait frame (on black bars or on a blurred copy of
itself), cropped to fill a portrait screen, under a caption band, with a corner logo, with subtitles burned
in, in grey, zoomed in.
Stills: a contact sheet of each video (16 frames, 4×4, laid out by a thumbnail tool or edge to edge), the
way a video is previewed where it is not posted, matched as an image; the reference is the sheet's own PDQ
against the video's frames.
Negatives are slideshows of photos no known video shows, plain and altered alike (and their sheets), and
every query also counts as a negative for the known videos it does not come from.

The reference hashes with ``vpdq.computeHash`` (1 hash per second, one thread) and matches as Meta's vPDQ
brute-force matcher does: query and compared frame shares at distance <= 31 and quality >= 50, both >= 80%
(whole video), or the query share alone >= 80% (clip rule, as HMA configures it). vigie hashes as
``vigie match`` does (each sampled frame with its flips, rotations and the picture inside any frame).
Hashing speed is measured at 720p on one core, as bank entries are hashed and as queries are.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import pdqhash
import vpdq
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from slideshow import encode, sheet, slideshow_frames  # noqa: E402
from vigie.banks import BankStore  # noqa: E402
from vigie.banks.ingest import entries_for_items  # noqa: E402
from vigie.banks.matcher import Matcher  # noqa: E402
from vigie.banks.video import VideoRules, distinct_frames, video_matches  # noqa: E402
from vigie.media import Item  # noqa: E402
from vigie.pipeline import PipelineContext, process_item  # noqa: E402
from vigie.settings import MediaLimits  # noqa: E402
from vigie.signals import hash_item  # noqa: E402
from vigie.signals.vpdq import hash_video  # noqa: E402
from vigie.store import open_db  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "bench" / "results"
FPS = 12
Frames = list[np.ndarray]


def ref_features(path: Path) -> list[tuple[np.ndarray, int]]:
    feats = vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)
    return [(np.frombuffer(bytes.fromhex(f.hex), dtype=np.uint8), f.quality) for f in feats]


def _good(feats: list[tuple[np.ndarray, int]]) -> np.ndarray | None:
    good = [h for h, qual in feats if qual >= 50]
    return np.stack(good) if good else None


def ref_close(q: list[tuple[np.ndarray, int]], t: list[tuple[np.ndarray, int]]) -> np.ndarray | None:
    """Query × target frames within 31 bits (quality ≥ 50 on both sides), as the reference compares them."""
    qa, ta = _good(q), _good(t)
    if qa is None or ta is None:
        return None
    return np.unpackbits(np.bitwise_xor(qa[:, None, :], ta[None, :, :]), axis=2).sum(axis=2) <= 31


def ref_shares(q: list[tuple[np.ndarray, int]], t: list[tuple[np.ndarray, int]]) -> tuple[float, float]:
    close = ref_close(q, t)
    if close is None:
        return 0.0, 0.0
    return float(close.any(axis=1).mean()), float(close.any(axis=0).mean())


# --- how re-uploads alter footage (benign frames in, frames out) ------------------------------------


def _each(fn: Callable[[Image.Image], Image.Image]) -> Callable[[Frames], Frames]:
    return lambda frames: [np.asarray(fn(Image.fromarray(f))) for f in frames]


def in_frame(canvas: tuple[int, int], blurred: bool = False) -> Callable[[Frames], Frames]:
    """The picture fitted inside a canvas of another shape: black bars, or itself blurred behind it."""

    def one(im: Image.Image) -> Image.Image:
        cw, ch = canvas
        k = min(cw / im.width, ch / im.height)
        pic = im.resize((round(im.width * k), round(im.height * k)), Image.Resampling.BILINEAR)
        if blurred:  # the picture scaled to cover the canvas, blurred: the common portrait re-post
            cover = max(cw / im.width, ch / im.height)
            bg = im.resize((round(im.width * cover), round(im.height * cover)), Image.Resampling.BILINEAR)
            left, top = (bg.width - cw) // 2, (bg.height - ch) // 2
            out = bg.crop((left, top, left + cw, top + ch)).filter(ImageFilter.GaussianBlur(24))
        else:
            out = Image.new("RGB", canvas)
        out.paste(pic, ((cw - pic.width) // 2, (ch - pic.height) // 2))
        return out

    return _each(one)


def captioned(im: Image.Image) -> Image.Image:
    """A white band on top with a line of text, as meme and repost apps add."""
    band = im.height // 6
    out = Image.new("RGB", (im.width, im.height + band), "white")
    out.paste(im, (0, band))
    ImageDraw.Draw(out).text((im.width // 20, band // 3), "when the weekend finally starts", fill="black")
    return out.resize(im.size, Image.Resampling.BILINEAR)


def subtitled(im: Image.Image) -> Image.Image:
    """Two lines of white, outlined text burned in over the lower part of the picture, as reposts add."""
    out = im.copy()
    d = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(12, im.height // 14))
    for k, line in enumerate(("repost @ example", "follow for part 2")):
        d.text((im.width * 0.08, im.height * (0.78 + 0.09 * k)), line, fill="white", font=font,
               stroke_width=2, stroke_fill="black")  # fmt: skip
    return out


def logo(im: Image.Image) -> Image.Image:
    out = im.copy()
    d = ImageDraw.Draw(out)
    w, h = im.size
    d.rectangle((w - w // 5, h - h // 9, w - w // 40, h - h // 40), fill=(240, 240, 240))
    d.text((w - w // 5 + 8, h - h // 9 + 8), "@reposts", fill=(20, 20, 20))
    return out


def filled(canvas: tuple[int, int]) -> Callable[[Image.Image], Image.Image]:
    """Cropped to fill a canvas of another shape (a landscape video made portrait by keeping its middle)."""

    def one(im: Image.Image) -> Image.Image:
        cw, ch = canvas
        k = max(cw / im.width, ch / im.height)
        big = im.resize((round(im.width * k), round(im.height * k)), Image.Resampling.BILINEAR)
        left, top = (big.width - cw) // 2, (big.height - ch) // 2
        return big.crop((left, top, left + cw, top + ch))

    return one


def cropped(frac: float) -> Callable[[Image.Image], Image.Image]:
    def one(im: Image.Image) -> Image.Image:
        dx, dy = round(im.width * frac), round(im.height * frac)
        return im.crop((dx, dy, im.width - dx, im.height - dy)).resize(im.size, Image.Resampling.BILINEAR)

    return one


ALTERED: dict[str, Callable[[Frames], Frames]] = {
    "mirrored": lambda fr: [np.ascontiguousarray(f[:, ::-1]) for f in fr],
    "4:3 frame, black bars": in_frame((960, 720)),
    "9:16 portrait frame, black bars": in_frame((720, 1280)),
    "9:16 portrait frame, blurred background": in_frame((720, 1280), blurred=True),
    "9:16 portrait, cropped to fill": _each(filled((720, 1280))),
    "caption band on top": _each(captioned),
    "corner logo": _each(logo),
    "subtitles burned in": _each(subtitled),
    "grey": _each(lambda im: im.convert("L").convert("RGB")),
    "cropped 10% per side": _each(cropped(0.10)),
    "mirrored, then a 9:16 portrait frame, blurred background": lambda fr: in_frame(
        (720, 1280), blurred=True
    )([np.ascontiguousarray(f[:, ::-1]) for f in fr]),
    "mirrored, then a 4:3 frame, black bars": lambda fr: in_frame((960, 720))(
        [np.ascontiguousarray(f[:, ::-1]) for f in fr]
    ),
}


def contact_sheet(frames: Frames, tiled: bool) -> bytes:
    """A JPEG of 16 frames, 4×4: as thumbnail tools lay a sheet out (dark gutters under a header of file
    details, a timestamp in each frame's corner), or edge to edge as ffmpeg's ``tile`` filter does."""
    picks = [Image.fromarray(frames[i]) for i in np.linspace(0, len(frames) - 1, 16).astype(int)]
    cell = (320, round(picks[0].height * 320 / picks[0].width))
    if tiled:
        im, _ = sheet(picks, 4, cell, gutter=0, margin=0, header=0, stamps=False)
    else:
        im, _ = sheet(picks, 4, cell, gutter=6)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


SHEETS = {
    "contact sheet, 4×4, gutters, timestamps (still)": False,
    "contact sheet, 4×4 edge to edge (still)": True,
}

#: Rows the issue sets a goal for (clips of 10 s and more, whole or inside other footage, re-encoded).
GOAL_KINDS = ("clip 10 s", "clip 20 s", "clip 30 s", "20 s clip inside unrelated footage")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 known videos at 640x360 (a smoke run)")
    ap.add_argument("--out", type=Path, default=RESULTS / "video.json")
    args = ap.parse_args()
    # the code measured is the tree at the start: a commit made while the run goes on is not in it
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    photos = sorted(PHOTOS.glob("*.jpg"))
    n_known, per, each_s = (2, 3, 12.0) if args.quick else (4, 3, 12.0)
    size = (640, 360) if args.quick else (1280, 720)
    limits = MediaLimits()
    work = Path(tempfile.mkdtemp(prefix="vigie-video-"))
    unseen = photos[n_known * per :]  # no known video shows these
    files: dict[str, tuple[Path, tuple[int, int]]] = {}

    def write(name: str, frames: Frames, fps: int = FPS, bitrate: int | None = None) -> Path:
        p = work / name
        sz = (frames[0].shape[1], frames[0].shape[0])
        p.write_bytes(encode(frames, fps, sz, bitrate))
        files[name] = (p, sz)
        return p

    store = BankStore(open_db(f"sqlite:///{work / 'v.db'}"))
    store.create_bank("videos")
    other = list(slideshow_frames(unseen[:5], 8.0, FPS, size, seed=99))  # unrelated footage, 40 s
    queries: list[tuple[str, int | None, str]] = []  # (file, known index or None, kind)
    sheets: list[tuple[int | None, str, bytes]] = []  # stills: (known index or None, kind, JPEG)
    rng = np.random.default_rng(5)
    speed: dict[str, object] = {}
    for k in range(n_known):
        fr = list(slideshow_frames(photos[k * per : (k + 1) * per], each_s, FPS, size, seed=k))
        p = write(f"known{k}.mp4", fr)
        item = Item(f"known{k}.mp4", p.read_bytes(), "video/mp4")
        if k == 0:  # hashing speed on one core: as a bank entry, as a query (with variants), reference
            duration = len(fr) / FPS
            hash_item(item, limits, 1.0, dihedral=True)  # warm up: PyAV's libraries, the DCT tables
            t0 = time.perf_counter()
            hash_video(item.data, limits, 1.0, views=True)
            t_bank = time.perf_counter() - t0
            t0 = time.perf_counter()
            hash_item(item, limits, 1.0, dihedral=True)
            t_query = time.perf_counter() - t0
            t0 = time.perf_counter()
            ref_features(p)
            t_ref = time.perf_counter() - t0
            speed = {
                "video_s": duration,
                "resolution": f"{size[0]}x{size[1]}",
                "source_fps": FPS,
                "vigie_bank_x_realtime": round(duration / t_bank, 1),
                "vigie_query_x_realtime": round(duration / t_query, 1),
                "vpdq_x_realtime": round(duration / t_ref, 1),
                "vigie_query_frames_per_s": round(len(fr) / t_query),
                "vpdq_frames_per_s": round(len(fr) / t_ref),
            }
        got = entries_for_items([item], store.get_bank("videos"), limits, {}, name_by="name")
        store.add_entries("videos", [e for e in got if not isinstance(e, str)])

        small = (size[0] // 2, size[1] // 2)
        write(f"q{k}_reencoded.mp4", _each(lambda im, s=small: im.resize(s))(fr), bitrate=300_000)
        queries.append((f"q{k}_reencoded.mp4", k, "whole, half size, 300 kb/s"))
        sd = (round(size[0] * 480 / size[1]) // 2 * 2, 480) if not args.quick else small
        write(f"q{k}_480p.mp4", _each(lambda im, s=sd: im.resize(s))(fr[::3]), fps=FPS // 3)
        queries.append((f"q{k}_480p.mp4", k, "whole, 480p at a third of the frame rate"))
        for secs in (10, 20, 30):
            start = int(rng.integers(0, len(fr) - secs * FPS))
            write(f"q{k}_clip{secs}.mp4", fr[start : start + secs * FPS])
            queries.append((f"q{k}_clip{secs}.mp4", k, f"clip {secs} s"))
        start = int(rng.integers(0, len(fr) - 20 * FPS))
        clip = fr[start : start + 20 * FPS]
        write(f"q{k}_inside.mp4", other[: 10 * FPS] + clip + other[10 * FPS : 30 * FPS])
        queries.append((f"q{k}_inside.mp4", k, "20 s clip inside unrelated footage"))
        for j, (kind, alter) in enumerate(ALTERED.items()):
            write(f"q{k}_alt{j}.mp4", alter(clip))
            queries.append((f"q{k}_alt{j}.mp4", k, f"20 s clip, {kind}"))
        sheets.extend((k, kind, contact_sheet(fr, tiled)) for kind, tiled in SHEETS.items())
        del fr, clip
    write("neg_other.mp4", other)
    queries.append(("neg_other.mp4", None, "unrelated"))
    n_neg = 2 if args.quick else 6
    for j in range(n_neg):
        pick = [unseen[(j + i * 3) % len(unseen)] for i in range(2)]
        neg = list(slideshow_frames(pick, 10.0, FPS, size, seed=50 + j))
        write(f"neg{j}.mp4", neg)
        sheets.extend(
            (None, f"unrelated, {kind}", contact_sheet(neg, tiled)) for kind, tiled in SHEETS.items()
        )
        queries.append((f"neg{j}.mp4", None, "unrelated"))
        kind = list(ALTERED)[j % len(ALTERED)]
        write(f"neg{j}_alt.mp4", ALTERED[kind](neg))
        queries.append((f"neg{j}_alt.mp4", None, f"unrelated, {kind}"))
    matcher = Matcher.open(store.db)
    ref_known = {k: ref_features(files[f"known{k}.mp4"][0]) for k in range(n_known)}

    def bank_bits(k: int) -> np.ndarray:
        """Known video ``k``'s entries as its bank holds them: distinct frames and their views."""
        frames = distinct_frames(hash_video(files[f"known{k}.mp4"][0].read_bytes(), limits, views=True))
        hexes = [f.pdq for f in frames] + [
            h.hex for f in frames for h in (f.views or {}).values() if h.quality >= 50
        ]
        return np.unpackbits(np.stack([np.frombuffer(bytes.fromhex(h), np.uint8) for h in hexes]), axis=1)

    known_bits = {k: bank_bits(k) for k in range(n_known)}

    def nearest(frames: list, k: int) -> list[int]:
        """Per query frame, its or a variant's distance to the nearest frame of known video ``k``."""
        out = []
        for f in distinct_frames(frames):
            hs = np.unpackbits(
                np.stack(
                    [np.frombuffer(bytes.fromhex(h), np.uint8) for h in [f.pdq, *(f.variants or {}).values()]]
                ),
                axis=1,
            )
            out.append(int((hs[:, None, :] != known_bits[k][None, :, :]).sum(axis=2).min()))
        return out

    rows = []
    for name, k, kind in queries:
        path, sz = files[name]
        sig = hash_item(Item(name, path.read_bytes(), "video/mp4"), limits, 1.0, dihedral=True)
        frames = sig.vpdq or []
        found = video_matches(matcher, frames)
        own = nearest(frames, k) if k is not None else []
        other_near = min((min(nearest(frames, kk), default=256) for kk in known_bits if kk != k), default=256)
        hits = {int(m.labels["external_id"][5:-4]) for m in found}
        rq = ref_features(path)
        ref_whole, ref_clip = set(), set()
        ref_frames_near = 0  # this query's frames within 31 bits of a frame of a video it is not from
        for kk, feats in ref_known.items():
            qs, cs = ref_shares(rq, feats)
            if qs >= 0.8 and cs >= 0.8:
                ref_whole.add(kk)
            if qs >= 0.8:
                ref_clip.add(kk)
            if kk != k:
                close = ref_close(rq, feats)
                ref_frames_near += 0 if close is None else int(close.any(axis=1).sum())
        via = sorted({v for m in found for v in m.labels["video_match"].get("frame_variants", {})})
        rows.append(
            {
                "query": name,
                "kind": kind,
                "size": f"{sz[0]}x{sz[1]}",
                "truth": k,
                "frames": len(frames),
                "vigie_hit": k in hits if k is not None else None,
                "vigie_false": len(hits - {k}),
                "vigie_rule": [m.labels["video_match"]["rule"] for m in found],
                "vigie_via": via,
                "vigie_own_median_bits": float(np.median(own)) if own else None,
                "vigie_nearest_other_bits": other_near,
                "ref_whole_hit": k in ref_whole if k is not None else None,
                "ref_query_share_hit": k in ref_clip if k is not None else None,
                "ref_false": len(ref_clip - {k}),
                "ref_frames_near_other": ref_frames_near,
            }
        )
    # stills: a contact sheet of a known video matches it through its cells (vigie); the reference is the
    # sheet's own PDQ within 31 bits of any of the video's frames, as a still is looked up beside a vPDQ bank
    ctx = PipelineContext(limits=limits, matcher=matcher)
    for j, (k, kind, data) in enumerate(sheets):
        res = process_item(Item(f"sheet{j}.jpg", data, "image/jpeg"), ctx)
        hits = {int(str(m["labels"].get("of", ""))[5:-4]) for m in res.matches if m["labels"].get("of")}
        with Image.open(io.BytesIO(data)) as im:
            bits, quality = pdqhash.compute(np.asarray(im.convert("RGB")))
        still = [(np.packbits(bits.astype(np.uint8)), int(quality))]
        ref_hits = {
            kk for kk, feats in ref_known.items() if (c := ref_close(still, feats)) is not None and c.any()
        }
        rows.append(
            {
                "query": f"sheet{j}.jpg",
                "kind": kind,
                "size": "still",
                "truth": k,
                "frames": 16,
                "vigie_hit": k in hits if k is not None else None,
                "vigie_false": len(hits - {k}),
                "vigie_rule": [],
                "vigie_via": sorted({str(m.get("transform")) for m in res.matches}),
                "vigie_own_median_bits": None,
                "vigie_nearest_other_bits": 256,
                "ref_whole_hit": k in ref_hits if k is not None else None,
                "ref_query_share_hit": k in ref_hits if k is not None else None,
                "ref_false": len(ref_hits - {k}),
                "ref_frames_near_other": 0,
            }
        )
    kinds = list(dict.fromkeys(r["kind"] for r in rows if r["truth"] is not None))
    print(f"{n_known} known videos ({speed['video_s']:.0f} s each, {size[0]}x{size[1]}), {len(rows)} queries")
    print(f"{'query kind':52} {'n':>3} | {'vigie':>6} | {'vpdq both>=80%':>14} {'vpdq query>=80%':>15}")
    table = {}
    for kind in kinds:
        rs = [r for r in rows if r["kind"] == kind]
        v = sum(r["vigie_hit"] for r in rs) / len(rs)
        rw = sum(r["ref_whole_hit"] for r in rs) / len(rs)
        rc = sum(r["ref_query_share_hit"] for r in rs) / len(rs)
        table[kind] = {
            "n": len(rs),
            "vigie_recall": v,
            "ref_whole_recall": rw,
            "ref_query_share_recall": rc,
            "goal": 0.95 if kind in GOAL_KINDS else None,
        }
        print(f"{kind:52} {len(rs):>3} | {v:>6.2f} | {rw:>14.2f} {rc:>15.2f}")
    vf = sum(r["vigie_false"] for r in rows)
    rf = sum(r["ref_false"] for r in rows)
    pairs = len(rows) * n_known - sum(r["truth"] is not None for r in rows)
    negs = sum(r["truth"] is None for r in rows)
    print(
        f"false matches over {pairs} (query, other known video) pairs, {negs} queries unrelated to every known "
        f"video: vigie {vf}, vpdq query>=80% {rf}"
    )
    own_med = [r["vigie_own_median_bits"] for r in rows if r["vigie_own_median_bits"] is not None]
    nearest_other = min(r["vigie_nearest_other_bits"] for r in rows)
    print(
        f"nearest frame of another video to any query frame or its variants: {nearest_other} bits "
        f"(query frames to their own video: median {float(np.median(own_med)):.0f} bits over queries, "
        f"worst query {max(own_med):.0f}); vigie counts frames within {VideoRules().near_bits} bits when they "
        "agree in time"
    )
    print(
        f"hashing one core at {speed['resolution']}: vigie {speed['vigie_bank_x_realtime']}x real time as a bank "
        f"entry, {speed['vigie_query_x_realtime']}x as a query ({speed['vigie_query_frames_per_s']} frames/s); "
        f"vpdq {speed['vpdq_x_realtime']}x ({speed['vpdq_frames_per_s']} frames/s)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "bench": "video",
        "commit": git,
        "known_videos": n_known,
        "speed": speed,
        "by_kind": table,
        "false_matches": {"pairs": pairs, "unrelated_queries": negs, "vigie": vf, "vpdq": rf},
        "nearest_other_frame_bits": nearest_other,
        "rows": rows,
    }
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"saved {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
