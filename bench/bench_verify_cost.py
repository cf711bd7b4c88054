"""What the verifier costs an upload that is not in the bank, on real photos.

Natural photos' PDQs cluster, so an unrelated upload can land within the verifier's 90-bit band of a media
entry and pay for verification (a second decode, keypoints, up to 8 candidates, the spread look) although
nothing will verify. The bank: the robustness benchmark's originals cut from every other shared photo (each
photo at 1024 px and its 4 tiles), added by `vigie bank add`. The queries: altered copies (JPEG q75, text
overlay, crop 5%, rotate 2°) of the originals of the other photos, none of them in the bank. Reported in one
run: the share of queries with a candidate, how near the nearest is, the verification time of queries with
and without candidates (the latter is the search alone), and any false verification.
``--crops N`` adds N random crops (40–100% of a side) of the banked photos, for a larger media bank.
Writes bench/results/verify_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_robustness import build_bank, encode, originals
from robustness import TRANSFORMS
from vigie.banks.matcher import Matcher
from vigie.banks.verify import VERIFY_RADIUS, candidates, verified_matches
from vigie.media import Item
from vigie.settings import MediaLimits
from vigie.signals import hash_item
from vigie.store import open_db

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
QUERY_TRANSFORMS = ("jpeg_q75", "text_overlay", "crop_5", "rotate_2")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=22)
    ap.add_argument("--crops", type=int, default=0, help="random crops of the banked photos added too")
    ap.add_argument("--out", type=Path, default=RESULTS / "verify_cost.json")
    args = ap.parse_args()
    limits = MediaLimits()
    origs = originals(args.photos, 2)
    banked = [o for o in origs if o[1] % 2 == 0]
    unrelated = [o for o in origs if o[1] % 2 == 1]
    work = Path(tempfile.mkdtemp(prefix="vigie-verify-cost-"))
    (work / "orig").mkdir()
    for name, _, im in banked:
        (work / "orig" / name).write_bytes(encode(im))
    rng = random.Random(0)
    for k in range(args.crops):
        _, _, im = banked[k % len(banked)]
        f = rng.uniform(0.4, 1.0)
        w, h = round(im.width * f), round(im.height * f)
        x, y = rng.randint(0, im.width - w), rng.randint(0, im.height - h)
        (work / "orig" / f"crop{k}.jpg").write_bytes(encode(im.crop((x, y, x + w, y + h))))
    build_bank(work / "home", work / "orig")
    matcher = Matcher.open(open_db(f"sqlite:///{work / 'home' / 'vigie.db'}"))
    rows = []
    by_transform: dict[str, int] = {}  # queries with a candidate, per transform
    for tname in QUERY_TRANSFORMS:
        for name, _, im in unrelated:
            data = encode(TRANSFORMS[tname](im))
            sig = hash_item(Item(name, data, "image/jpeg"), limits, dihedral=True)
            if not sig.pdq:
                continue
            cands = candidates(matcher, sig)
            t0 = time.perf_counter()
            got = verified_matches(matcher, data, sig, limits)
            rows.append(
                (len(cands), min((d for _, d in cands), default=None), time.perf_counter() - t0, len(got))
            )
            by_transform[tname] = by_transform.get(tname, 0) + int(bool(cands))
    with_c = [r for r in rows if r[0]]
    without = [r for r in rows if not r[0]]
    nearest = [r[1] for r in with_c]
    result = {
        "bench": "verify_cost",
        "bank_originals": len(banked),
        "bank_crops": args.crops,
        "queries": len(rows),
        "with_candidates": len(with_c),
        "share_with_candidates": round(len(with_c) / max(len(rows), 1), 4),
        "candidates_per_query_with_any": round(float(np.mean([r[0] for r in with_c])), 2) if with_c else 0,
        "nearest_candidate_bits": [int(x) for x in np.percentile(nearest, [0, 50, 100])] if nearest else [],
        "verify_ms_with_candidates": round(float(np.mean([r[2] for r in with_c])) * 1000, 2)
        if with_c
        else None,
        "verify_ms_without": round(float(np.mean([r[2] for r in without])) * 1000, 2) if without else None,
        "false_verifications": sum(r[3] for r in rows),
        "with_candidates_by_transform": by_transform,
        "queries_per_transform": len(unrelated),
    }
    print(
        f"{len(rows)} unrelated queries against {len(banked) + args.crops} media entries: {len(with_c)} "
        f"({result['share_with_candidates']:.1%}) have a candidate within {VERIFY_RADIUS} bits "
        f"(nearest min/median/max {result['nearest_candidate_bits']}); verification "
        f"{result['verify_ms_with_candidates']} ms with candidates, {result['verify_ms_without']} ms without; "
        f"false verifications: {result['false_verifications']}; with a candidate, per transform (of "
        f"{len(unrelated)}): {by_transform}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
