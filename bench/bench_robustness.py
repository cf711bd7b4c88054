"""Robust matching: recall per transform at 99.99% precision and at the production thresholds.

In the manner of Thorn's perception benchmarking: benign photos (and tiles cut from them, as extra distinct
images) are altered by the transforms in ``robustness.py``; every altered copy is compared with its own
original (a positive) and with every original cut from another photo (negatives: hundreds of thousands of
pairs). Two methods, same files, same run:
- reference: plain PDQ, ``pdqhash.compute`` on the fully decoded image;
- vigie: the full pipeline against a bank built by ``vigie bank add`` (whatever robust matching vigie does
  shows up here without changing this script), and the signals it hashes for a query (its PDQ, dihedral
  variants and trims, against each original's PDQ and derived crops/tilts).
Recall at 99.99% precision uses thresholds chosen on the data: for PDQ the largest distance at which
precision over all pairs stays >= 0.9999; vigie's matcher counts a pair where the pipeline matched it (any
stage: PDQ, derived entries, verified keypoints), or where PDQ's own distance or the nearest of its extra
signals is within its threshold, the two thresholds being the pair that keeps the most positives at that
precision (``JointCurve``); "signals" is one threshold on the nearest signal distance alone. Production
uses the bank's threshold 31 and quality >= 50, and its recall counts the queries whose original a bank can
hold (``vigie bank add`` keeps PDQ of quality >= 50). Hash-only (privacy mode): the production matcher on
what a platform that hashes itself sends with ``vigie hash --json --variants`` (no keypoint verifier,
which needs pixels), with ``--keypoints`` too (its keypoint views, sent as JSON and verified as the service
verifies them), and on its PDQ alone. Speed: query
hashing (PDQ, 8 dihedral variants, trims) against ``pdqhash`` on the decoded image, per query on one core;
the whole pipeline (match and verification on candidates too) is reported beside it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import pdqhash
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from curves import Curve, JointCurve
from robustness import COMBINED, HARD, OUT_OF_SCOPE, TRANSFORMS
from vigie.banks.ingest import media_aids
from vigie.banks.matcher import Matcher
from vigie.media import Item, sniff
from vigie.pipeline import PipelineContext, match_record, process_item, verified_match_dicts
from vigie.settings import MediaLimits
from vigie.signals import hash_item
from vigie.signals.item import sent_signals
from vigie.signals.pdq import WEAK_SPREAD
from vigie.signals.views import PixelViews, SentViews
from vigie.store import open_db

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "bench" / "results"


def originals(count: int, grid: int) -> list[tuple[str, int, Image.Image]]:
    """(name, source photo index, image): each photo at 1024 px, plus a grid×grid of tiles from it."""
    out = []
    for i, p in enumerate(sorted(PHOTOS.glob("*.jpg"))[:count]):
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((1600, 1600))
            whole = im.copy()
            whole.thumbnail((1024, 1024))
            out.append((f"{p.stem}.jpg", i, whole))
            tw, th = im.width // grid, im.height // grid
            for r in range(grid):
                for c in range(grid):
                    tile = im.crop((c * tw, r * th, (c + 1) * tw, (r + 1) * th))
                    out.append((f"{p.stem}_t{r}{c}.jpg", i, tile))
    return out


def encode(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def ref_hash(data: bytes) -> tuple[np.ndarray, int]:
    with Image.open(io.BytesIO(data)) as im:
        bits, q = pdqhash.compute(np.asarray(im.convert("RGB")))
    return np.packbits(bits.astype(np.uint8)), int(q)


def hexbits(h: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(h), dtype=np.uint8)


def distances(queries: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Hamming distances, queries (m, 32) × refs (n, 32) -> (m, n)."""
    x = np.bitwise_xor(queries[:, None, :], refs[None, :, :])
    return np.unpackbits(x, axis=2).sum(axis=2)


def hashing_speed(sample: list[bytes], limits: MediaLimits, rounds: int = 3) -> dict[str, Any]:
    """Query hashing alone, the whole sample by each method in turn, ``rounds`` times (the best round of
    each counts, as timeit does): pdqhash on the decoded image vs everything vigie hashes for a query
    (PDQ, 8 dihedral variants, trims)."""
    best_ref = best_vig = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for data in sample:
            ref_hash(data)
        t1 = time.perf_counter()
        for data in sample:
            hash_item(Item("q.jpg", data, "image/jpeg"), limits, dihedral=True)
        t2 = time.perf_counter()
        best_ref, best_vig = min(best_ref, t1 - t0), min(best_vig, t2 - t1)
    n = max(len(sample), 1)
    return {
        "speed_queries": len(sample),
        "reference_hash_ms": round(best_ref / n * 1000, 2),
        "vigie_hash_ms": round(best_vig / n * 1000, 2),
        "hashing_speedup_vs_reference": round(best_ref / max(best_vig, 1e-9), 2),
    }


def build_bank(home: Path, origdir: Path) -> None:
    vigie = str(Path(sys.executable).parent / "vigie")
    env = {**os.environ, "VIGIE_HOME": str(home)}
    for args in (["bank", "create", "robust"], ["bank", "add", "robust", str(origdir), "--name-by", "name"]):
        subprocess.run([vigie, *args], env=env, check=True, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=22)
    ap.add_argument("--grid", type=int, default=2, help="tiles per side cut from each photo")
    ap.add_argument("--quick", action="store_true", help="6 photos, for a smoke run")
    ap.add_argument("--out", type=Path, default=RESULTS / "robustness.json")
    ap.add_argument("--show-missed", action="store_true", help="name the usable-quality queries vigie missed")
    ap.add_argument("--dump", type=Path, help="also save every pair's distances and matches (npz)")
    args = ap.parse_args()
    # the code measured is the tree at the start: a commit made while the run goes on is not in it
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    if args.quick:
        args.photos = 6
    limits = MediaLimits()
    origs = originals(args.photos, args.grid)
    groups = np.array([g for _, g, _ in origs])
    work = Path(tempfile.mkdtemp(prefix="vigie-robust-"))
    (work / "orig").mkdir()
    orig_bytes = []
    for name, _, im in origs:
        data = encode(im)
        (work / "orig" / name).write_bytes(data)
        orig_bytes.append(data)
    build_bank(work / "home", work / "orig")
    ref_orig = np.stack([ref_hash(d)[0] for d in orig_bytes])
    vig_sigs = [
        hash_item(Item(n, d, "image/jpeg"), limits) for (n, _, _), d in zip(origs, orig_bytes, strict=True)
    ]
    # what vigie holds per original: its PDQ plus the derived crop/tilt PDQs `vigie bank add` stores
    aids = [media_aids(d, limits) for d in orig_bytes]
    vig_hashes: list[np.ndarray] = []
    vig_owner: list[int] = []
    for k, (s, a) in enumerate(zip(vig_sigs, aids, strict=True)):
        for h in [s.pdq or "0" * 64, *a.derived.values()]:
            vig_hashes.append(hexbits(h))
            vig_owner.append(k)
    vig_orig = np.stack(vig_hashes)
    owner = np.array(vig_owner)
    bankable = np.array([(s.pdq_quality or 0) >= 50 for s in vig_sigs])  # vigie bank add keeps PDQ >= 50
    # what `vigie bank add` reports as a weak PDQ (flat low frequencies): the "informative" breakdown
    informative = bankable & np.array([a.spread >= WEAK_SPREAD for a in aids])
    matcher = Matcher.open(open_db(f"sqlite:///{work / 'home' / 'vigie.db'}"))
    ctx = PipelineContext(limits=limits, matcher=matcher)
    process_item(Item("warm.jpg", orig_bytes[0], "image/jpeg"), ctx)
    index_of = {name: k for k, (name, _, _) in enumerate(origs)}

    rows: dict[str, dict[str, Any]] = {}
    # every query against every original: plain PDQ, vigie's signals, vigie's matcher (see the docstring);
    # and the same two on what a bank holds: queries of bankable originals, negatives among bankable ones
    ref, sig_curve, comb = Curve(), Curve(), JointCurve()
    ref_b, comb_b = Curve(), JointCurve()
    comb_i = JointCurve()  # and vigie's matcher on the bankable originals the bank does not report as weak
    t_ref = t_vig = t_hash = t_kp = 0.0
    kp_bytes: list[int] = []  # JSON size of each query's keypoints
    speed_sample: list[bytes] = []  # every 4th query, hashed again on its own for the speed figures
    nq = 0
    missed: dict[str, list[str]] = {}  # bankable, usable-quality queries vigie did not match
    dump: list[Any] = []
    own = np.array([vig_owner.index(k) for k in range(len(origs))])

    for tname, fn in TRANSFORMS.items():
        rec = {
            "n": 0,
            "bankable": 0,
            "ref_prod": 0,
            "ref_low_quality": 0,
            "vigie_prod": 0,
            "vigie_false": 0,
            "vigie_low_quality": 0,
            "vigie_missed_low_quality": 0,
            "usable": 0,
            "usable_hit": 0,
            "hash_only_prod": 0,
            "hash_only_pdq_prod": 0,
            "hash_only_false": 0,
            "hash_only_kp_prod": 0,
            "hash_only_kp_false": 0,
        }
        for i, (name, g, im) in enumerate(origs):
            data = encode(fn(im))
            if nq % 4 == 0:
                speed_sample.append(data)
            nq += 1
            rec["n"] += 1
            t0 = time.perf_counter()
            rh, rq = ref_hash(data)
            t_ref += time.perf_counter() - t0
            t0 = time.perf_counter()
            res = process_item(Item(f"q/{tname}/{name}", data, sniff(data)), ctx)
            t_vig += time.perf_counter() - t0
            t0 = time.perf_counter()
            sig = hash_item(Item("q.jpg", data, "image/jpeg"), limits, dihedral=True)
            t_hash += time.perf_counter() - t0
            mask = groups != g  # negatives: originals cut from other photos
            d_ref = distances(rh[None, :], ref_orig)[0]
            ref.add(tname, d_ref[i], d_ref[mask])
            ref_b.add(tname, d_ref[i] if bankable[i] else None, d_ref[mask & bankable])
            variants = (
                [sig.pdq, *(sig.pdq_dihedral or [])[1:], *(sig.pdq_extra or {}).values()] if sig.pdq else []
            )
            d_vig = np.full(len(origs), 256)
            d_plain = np.full(len(origs), 256)  # the query's own PDQ against each original's own PDQ
            if variants:
                per_pair = distances(np.stack([hexbits(v) for v in variants]), vig_orig)
                np.minimum.at(d_vig, owner, per_pair.min(axis=0))
                d_plain = per_pair[0, own]
            sig_curve.add(tname, d_vig[i], d_vig[mask])
            rec["bankable"] += int(bankable[i])
            rec["ref_prod"] += int(d_ref[i] <= 31 and rq >= 50 and bankable[i])
            rec["ref_low_quality"] += int(rq < 50)
            rec["vigie_low_quality"] += int((res.pdq_quality or 0) < 50)
            hit_names = {
                str((m.get("labels") or {}).get("external_id", "")).rsplit("/", 1)[-1] for m in res.matches
            }
            hit = name in hit_names and bankable[i]
            rec["vigie_prod"] += int(hit)
            low = (res.pdq_quality or 0) < 50  # never matched by PDQ distance: only verified keypoints
            rec["vigie_missed_low_quality"] += int(bankable[i] and low and not hit)
            rec["usable"] += int(bankable[i] and not low)
            rec["usable_hit"] += int(hit and not low)
            if bankable[i] and not low and not hit:
                missed.setdefault(tname, []).append(name)
            rec["vigie_false"] += sum(1 for n2 in hit_names if n2 in index_of and groups[index_of[n2]] != g)
            # privacy mode: what the platform sends, hashed by vigie on its side (no keypoints: only a weak
            # entry's stable bits verify), as `vigie hash --json --variants` prints it, and its PDQ alone
            for key, extra in (("hash_only_prod", sig.variants()), ("hash_only_pdq_prod", None)):
                found = matcher.match(pdq=sig.pdq, pdq_quality=sig.pdq_quality, pdq_variants=extra or None)
                ms = [match_record(m) for m in found.matches]
                ms += verified_match_dicts(
                    matcher, sent_signals(sig.pdq, sig.pdq_quality, extra or {}), None,
                    [*ms, *(match_record(m) for m in found.suppressed)],
                )  # fmt: skip
                names = {str((m.get("labels") or {}).get("external_id", "")).rsplit("/", 1)[-1] for m in ms}
                rec[key] += int(name in names and bankable[i])
                if extra is not None:
                    rec["hash_only_false"] += sum(
                        1 for n2 in names if n2 in index_of and groups[index_of[n2]] != g
                    )
            # and with the keypoints `--keypoints` adds, through JSON as the service gets them
            t0 = time.perf_counter()
            packed = json.dumps({**PixelViews(data, limits).pack(), "hints": sig.pdq_hints or []})
            t_kp += time.perf_counter() - t0
            kp_bytes.append(len(packed))
            views = SentViews.parse(json.loads(packed))
            found = matcher.match(
                pdq=sig.pdq, pdq_quality=sig.pdq_quality, pdq_variants=sig.variants() or None
            )
            ms = [match_record(m) for m in found.matches]
            ms += verified_match_dicts(
                matcher, sent_signals(sig.pdq, sig.pdq_quality, sig.variants(), views.hints), views,
                [*ms, *(match_record(m) for m in found.suppressed)],
            )  # fmt: skip
            names = {str((m.get("labels") or {}).get("external_id", "")).rsplit("/", 1)[-1] for m in ms}
            rec["hash_only_kp_prod"] += int(name in names and bankable[i])
            rec["hash_only_kp_false"] += sum(
                1 for n2 in names if n2 in index_of and groups[index_of[n2]] != g
            )
            # the matcher: matched by a stage, else PDQ's own distance and the nearest extra signal
            matched = np.zeros(len(origs), dtype=bool)
            matched[[index_of[n2] for n2 in hit_names if n2 in index_of]] = True
            cp, cv = JointCurve.codes(matched, d_plain, d_vig)
            if args.dump:
                dump.append((tname, i, d_ref, d_vig, cp - 1, matched, rq, res.pdq_quality or 0))
            for curve, sel in ((comb, None), (comb_b, bankable), (comb_i, informative)):
                keep = mask if sel is None else mask & sel
                curve.add(tname, (cp[i], cv[i]) if sel is None or sel[i] else None, (cp[keep], cv[keep]))
        rows[tname] = rec
    if args.dump:
        np.savez(args.dump, tname=np.array([d[0] for d in dump]), i=np.array([d[1] for d in dump]),
                 d_ref=np.stack([d[2] for d in dump]), d_vig=np.stack([d[3] for d in dump]),
                 d_plain=np.stack([d[4] for d in dump]), matched=np.stack([d[5] for d in dump]),
                 ref_q=np.array([d[6] for d in dump]), vig_q=np.array([d[7] for d in dump]),
                 groups=groups, bankable=bankable, informative=informative)  # fmt: skip
    speed = hashing_speed(speed_sample, limits)
    t_r, t_v, t_rb = ref.fit(), sig_curve.fit(), ref_b.fit()
    for joint in (comb, comb_b, comb_i):
        joint.fit()
    table = []
    print(f"{len(origs)} originals × {len(TRANSFORMS)} transforms = {nq} queries; "
          f"{ref.negatives:,} negative pairs; 99.99% precision thresholds: PDQ {t_r}, vigie signals {t_v}, vigie matcher (a stage matched, or {comb.label()}); "
          f"on the bankable set ({comb_b.negatives:,} negative pairs): PDQ {t_rb}, vigie matcher {comb_b.label()}; "
          f"without the {int((bankable & ~informative).sum())} originals the bank reports as weak PDQs: vigie matcher {comb_i.label()}")  # fmt: skip
    print(
        "columns: all queries (n) | bankable originals only (nb): PDQ and vigie's matcher at 99.99% precision, vigie's matcher without the originals the bank reports as weak PDQs, production recall, false matches, low-quality misses, recall over usable-quality queries, production recall of a hash-only item with its variants, and with its keypoints too"
    )
    print(
        f"{'transform':18} {'n':>4} {'PDQ@P99.99':>10} {'vigie@P99.99':>12} | {'nb':>3} {'PDQ@P99.99':>10} {'vigie@P99.99':>12} {'not weak':>8} {'PDQ@31':>7} {'vigie prod':>10} {'false':>5} {'lowQ miss':>9} {'prod q>=50':>10} {'hash-only':>9} {'+keypts':>7} | goal"
    )
    for tname, rec in rows.items():
        n = rec["n"]
        r99, s99, v99 = ref.recall(tname), sig_curve.recall(tname), comb.recall(tname)
        rb99, vb99, vi99 = ref_b.recall(tname), comb_b.recall(tname), comb_i.recall(tname)
        goal = None if tname in OUT_OF_SCOPE else 0.95 if tname in HARD else 0.99
        nb = max(rec["bankable"], 1)
        met = None if goal is None else bool(vb99 >= goal)
        row = {"transform": tname, "n": n, "pdq_recall_at_p9999": round(r99, 4), "pdq_recall_prod": round(rec["ref_prod"] / max(rec["bankable"], 1), 4),
               "pdq_low_quality": rec["ref_low_quality"], "vigie_recall_at_p9999": round(v99, 4), "vigie_signals_recall_at_p9999": round(s99, 4),
               "bankable": rec["bankable"], "pdq_recall_at_p9999_bankable": rb99, "vigie_recall_at_p9999_bankable": vb99,
               "vigie_recall_at_p9999_not_weak": vi99,
               "vigie_recall_prod": round(rec["vigie_prod"] / max(rec["bankable"], 1), 4), "vigie_false_matches": rec["vigie_false"],
               "vigie_low_quality": rec["vigie_low_quality"], "vigie_missed_low_quality": rec["vigie_missed_low_quality"],
               "vigie_recall_prod_usable_quality": round(rec["usable_hit"] / max(rec["usable"], 1), 4),
               "hash_only_recall_prod": round(rec["hash_only_prod"] / nb, 4),
               "hash_only_pdq_recall_prod": round(rec["hash_only_pdq_prod"] / nb, 4),
               "hash_only_false_matches": rec["hash_only_false"],
               "hash_only_keypoints_recall_prod": round(rec["hash_only_kp_prod"] / nb, 4),
               "hash_only_keypoints_false_matches": rec["hash_only_kp_false"],
               "goal": goal, "goal_met": met, "combined": tname in COMBINED}  # fmt: skip
        table.append(row)
        mark = "-" if met is None else "met" if met else "NOT met"
        print(f"{tname:18} {n:>4} {r99:>10.3f} {v99:>12.3f} | {rec['bankable']:>3} {rb99:>10.3f} {vb99:>12.3f} {vi99:>8.3f} {rec['ref_prod'] / nb:>7.3f} {rec['vigie_prod'] / nb:>10.3f} {rec['vigie_false']:>5} {rec['vigie_missed_low_quality']:>9} {rec['usable_hit'] / max(rec['usable'], 1):>10.3f} {rec['hash_only_prod'] / nb:>9.3f} {rec['hash_only_kp_prod'] / nb:>7.3f} | {goal or '-'} {mark}")  # fmt: skip
    nbank = max(sum(r["bankable"] for r in rows.values()), 1)
    overall = {
        "queries": nq,
        "negative_pairs": ref.negatives,
        "negative_pairs_bankable": comb_b.negatives,
        "pdq_threshold_at_p9999": t_r,
        "vigie_threshold_at_p9999": t_v,
        "pdq_recall_at_p9999": ref.recall(),
        "vigie_signals_recall_at_p9999": sig_curve.recall(),
        "vigie_matcher_thresholds_at_p9999": comb.thresholds,
        "vigie_recall_at_p9999": comb.recall(),
        "pdq_threshold_at_p9999_bankable": t_rb,
        "pdq_recall_at_p9999_bankable": ref_b.recall(),
        "vigie_matcher_thresholds_at_p9999_bankable": comb_b.thresholds,
        "vigie_recall_at_p9999_bankable": comb_b.recall(),
        "weak_pdq_originals": int((bankable & ~informative).sum()),
        "vigie_matcher_thresholds_at_p9999_not_weak": comb_i.thresholds,
        "vigie_recall_at_p9999_not_weak": comb_i.recall(),
        "bankable_queries": sum(r["bankable"] for r in rows.values()),
        "pdq_recall_prod": round(sum(r["ref_prod"] for r in rows.values()) / nbank, 4),
        "vigie_recall_prod": round(sum(r["vigie_prod"] for r in rows.values()) / nbank, 4),
        "vigie_false_matches_prod": sum(r["vigie_false"] for r in rows.values()),
        "vigie_missed_low_quality": sum(r["vigie_missed_low_quality"] for r in rows.values()),
        "vigie_recall_prod_usable_quality": round(
            sum(r["usable_hit"] for r in rows.values()) / max(sum(r["usable"] for r in rows.values()), 1), 4
        ),
        "hash_only_recall_prod": round(sum(r["hash_only_prod"] for r in rows.values()) / nbank, 4),
        "hash_only_pdq_recall_prod": round(sum(r["hash_only_pdq_prod"] for r in rows.values()) / nbank, 4),
        "hash_only_false_matches": sum(r["hash_only_false"] for r in rows.values()),
        "hash_only_keypoints_recall_prod": round(
            sum(r["hash_only_kp_prod"] for r in rows.values()) / nbank, 4
        ),
        "hash_only_keypoints_false_matches": sum(r["hash_only_kp_false"] for r in rows.values()),
        "keypoints_ms_per_query": round(t_kp / nq * 1000, 2),
        "keypoints_json_bytes_median": int(np.median(kp_bytes)),
        "keypoints_json_bytes_p99": int(np.percentile(kp_bytes, 99)),
        "reference_ms_per_query": round(t_ref / nq * 1000, 2),
        "vigie_pipeline_ms_per_query": round(t_vig / nq * 1000, 2),
        "vigie_hash_ms_per_query_in_loop": round(t_hash / nq * 1000, 2),
        **speed,
    }
    print(f"hashing, {speed['speed_queries']} queries on their own, one core: reference {speed['reference_hash_ms']} ms, vigie {speed['vigie_hash_ms']} ms "
          f"({speed['hashing_speedup_vs_reference']}x); inside the accuracy loop: reference {overall['reference_ms_per_query']} ms, "
          f"vigie hashing {overall['vigie_hash_ms_per_query_in_loop']} ms, whole pipeline with matching and verification {overall['vigie_pipeline_ms_per_query']} ms")  # fmt: skip
    print(json.dumps(overall))
    if args.show_missed:
        for tname, names in missed.items():
            print(f"missed {tname}: {' '.join(names)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"bench": "robustness", "commit": git, "overall": overall, "transforms": table}, indent=1)
        + "\n"
    )
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
