"""PDQ hashing speed and conformance: vigie vs pdqhash on the fully decoded image, one core, same files.

The reference is what python-threatexchange and perception do: ``PIL.Image.open(f).convert("RGB")`` then
``pdqhash.compute``. vigie decodes large JPEGs at reduced scale (short side ≥ 640 px) and hashes with its
own numba PDQ. Conformance is PDQ's rule for other implementations: ≤ 10 bits from the reference at
quality ≥ 80. Test JPEGs of ~1, 3, 6 and 12 MP are made from the shared photos (resize + re-encode q90).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pdqhash
from PIL import Image

from vigie.media import Item
from vigie.settings import MediaLimits
from vigie.signals import hash_item

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "bench" / "results"
SIZES_MP = (1, 3, 6, 12)


def reference(data: bytes) -> tuple[str, int]:
    with Image.open(io.BytesIO(data)) as im:
        bits, q = pdqhash.compute(np.asarray(im.convert("RGB")))
    return np.packbits(bits).tobytes().hex(), int(q)


def corpus(mp: int, count: int) -> list[bytes]:
    srcs = sorted(PHOTOS.glob("*.jpg"))[:count]
    out = []
    for p in srcs:
        with Image.open(p) as im:
            im = im.convert("RGB")
            k = (mp * 1e6 / (im.width * im.height)) ** 0.5
            im = im.resize((round(im.width * k), round(im.height * k)), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=90)
            out.append(buf.getvalue())
    return out


def timed(fn, datas: list[bytes]) -> tuple[float, list]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    res = [fn(d) for d in datas]
    return time.perf_counter() - t, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=22, help="photos per size (max 22)")
    args = ap.parse_args()
    if not PHOTOS.is_dir():
        sys.exit(f"no photos in {PHOTOS}")
    limits = MediaLimits()
    hash_item(Item("warm.jpg", corpus(1, 1)[0], "image/jpeg"), limits)  # compile the numba kernel first

    def vigie(data: bytes) -> tuple[str, int]:
        sig = hash_item(Item("x.jpg", data, "image/jpeg"), limits)
        return sig.pdq or "", sig.pdq_quality or 0

    rows = []
    tot_ref = tot_vig = 0.0
    tot_n = 0
    all_drift: list[int] = []
    for mp in SIZES_MP:
        datas = corpus(mp, args.count)
        t_ref, ref = timed(reference, datas)
        t_vig, ours = timed(vigie, datas)
        drift = [
            (int(a, 16) ^ int(b, 16)).bit_count()
            for (a, qa), (b, _) in zip(ref, ours, strict=True)
            if qa >= 80
        ]
        all_drift += drift
        tot_ref += t_ref
        tot_vig += t_vig
        tot_n += len(datas)
        rows.append(
            {
                "megapixels": mp,
                "images": len(datas),
                "reference_per_s": round(len(datas) / t_ref, 2),
                "vigie_per_s": round(len(datas) / t_vig, 2),
                "speedup": round(t_ref / t_vig, 2),
                "drift_mean_bits": round(statistics.mean(drift), 2) if drift else None,
                "drift_max_bits": max(drift) if drift else None,
                "conformant": all(d <= 10 for d in drift),
            }
        )
    overall = {
        "images": tot_n,
        "reference_per_s": round(tot_n / tot_ref, 2),
        "vigie_per_s": round(tot_n / tot_vig, 2),
        "speedup": round(tot_ref / tot_vig, 2),
        "drift_mean_bits": round(statistics.mean(all_drift), 2),
        "drift_max_bits": max(all_drift),
        "conformant": all(d <= 10 for d in all_drift),
    }
    print("PDQ hashing, decode included, one core (images/s); drift vs reference at quality ≥ 80")
    print(f"{'MP':>4}{'n':>5}{'pdqhash':>10}{'vigie':>10}{'speedup':>9}{'drift mean':>12}{'max':>6}")
    for r in [*rows, {"megapixels": "all", **overall}]:
        print(
            f"{r['megapixels']!s:>4}{r['images']:>5}{r['reference_per_s']:>10.1f}{r['vigie_per_s']:>10.1f}"
            f"{r['speedup']:>8.1f}×{r['drift_mean_bits']!s:>12}{r['drift_max_bits']!s:>6}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "bench": "hash",
        "reference": "PIL full decode + pdqhash.compute",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "sizes": rows,
        "overall": overall,
    }
    (RESULTS / "hash.json").write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
