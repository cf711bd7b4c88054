"""Cost of the provenance pass (metadata analyzers) per file, against PDQ hashing of the same file.

Goal (issue 4): for files without metadata the provenance pass stays under 10% of the hashing cost. The
reference hashing cost is pdqhash on the fully decoded image (what other tools do); vigie's own faster
hashing is reported too, since that is what a vigie scan actually pays. The pass is timed alone (as
``vigie inspect`` runs it) and after hashing the same item (as a scan or an upload runs it, where the
watermark check reads the pixels hashing decoded).
"""

from __future__ import annotations

import io
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, PngImagePlugin

from vigie.analyzers import analyze_item, default_analyzers
from vigie.media import Item
from vigie.settings import MediaLimits
from vigie.signals import hash_item

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "bench" / "results"


def per_file(fn, datas: list, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for d in datas:
            fn(d)
        best = min(best, (time.perf_counter() - t) / len(datas))
    return best


def main() -> None:
    plain = [p.read_bytes() for p in sorted(PHOTOS.glob("*.jpg"))]
    with_meta = []
    for d in plain[:8]:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", "a lighthouse\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 512x512")
        buf = io.BytesIO()
        Image.open(io.BytesIO(d)).convert("RGB").save(buf, "PNG", pnginfo=info)
        with_meta.append(buf.getvalue())
    analyzers = default_analyzers()
    limits = MediaLimits()
    hash_item(Item("w", plain[0], "image/jpeg"), limits)

    def ref_hash(d: bytes) -> None:
        pdqhash.compute(np.asarray(Image.open(io.BytesIO(d)).convert("RGB")))

    def hashed(datas: list[bytes]) -> list[Item]:  # as a scan or an upload has them: hashed first
        items = [Item("x", d) for d in datas]
        for item in items:
            hash_item(item, limits)
        return items

    rows = {}
    for name, datas in (("JPEG photos, no metadata", plain), ("PNG with generator metadata", with_meta)):
        t_prov = per_file(lambda d: analyze_item(Item("x", d), analyzers), datas)
        t_ref = per_file(ref_hash, datas, 1)
        t_vig = per_file(lambda d: hash_item(Item("x", d), limits), datas, 1)
        t_after = per_file(lambda item: analyze_item(item, analyzers), hashed(datas))
        rows[name] = {
            "files": len(datas),
            "provenance_ms": round(t_prov * 1000, 3),
            "provenance_after_hashing_ms": round(t_after * 1000, 3),
            "pdqhash_ms": round(t_ref * 1000, 2),
            "vigie_hash_ms": round(t_vig * 1000, 2),
            "of_reference_hashing": round(t_prov / t_ref, 4),
            "of_vigie_hashing": round(t_prov / t_vig, 4),
            "after_hashing_of_vigie_hashing": round(t_after / t_vig, 4),
        }
    print(
        f"{'files':<30}{'provenance ms':>14}{'pdqhash ms':>12}{'share':>8}{'vigie hash ms':>15}{'share':>8}"
        f"{'after hashing ms':>18}{'share':>8}"
    )
    for name, r in rows.items():
        print(
            f"{name:<30}{r['provenance_ms']:>14.3f}{r['pdqhash_ms']:>12.1f}{r['of_reference_hashing']:>8.1%}"
            f"{r['vigie_hash_ms']:>15.1f}{r['of_vigie_hashing']:>8.1%}"
            f"{r['provenance_after_hashing_ms']:>18.3f}{r['after_hashing_of_vigie_hashing']:>8.1%}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"bench": "provenance", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    (RESULTS / "provenance.json").write_text(json.dumps({**doc, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
