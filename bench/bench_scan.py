"""`vigie scan` throughput with N workers against the hashing bound measured in the same run.

The bound is what hashing alone does: single-process ``hash_item`` images/s times the worker count (the
scan cannot beat pure hashing on the same cores). The goal (issue 2) is ≥ 80% of that bound with 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "bench" / "results"


def make_corpus(dest: Path, count: int, megapixels: float) -> list[Path]:
    """``count`` JPEGs of about ``megapixels`` MP cut from the shared photos (distinct crops)."""
    srcs = sorted(PHOTOS.glob("*.jpg"))
    if not srcs:
        sys.exit(f"no photos in {PHOTOS}")
    out: list[Path] = []
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        with Image.open(srcs[i % len(srcs)]) as im:
            im = im.convert("RGB")
            k = i // len(srcs)
            w, h = im.size
            crop = im.crop((k * 7 % max(1, w // 10), k * 5 % max(1, h // 10), w - k * 3, h - k * 2))
            scale = (megapixels * 1e6 / (crop.width * crop.height)) ** 0.5
            crop = crop.resize((max(64, int(crop.width * scale)), max(64, int(crop.height * scale))))
            p = dest / f"img_{i:04d}.jpg"
            crop.save(p, "JPEG", quality=90)
            out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=120)
    ap.add_argument("--megapixels", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from vigie.media import iter_file
    from vigie.scan.runner import ScanOptions, run_scan
    from vigie.settings import Settings
    from vigie.signals import hash_item

    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        corpus = make_corpus(tmpd / "corpus", args.count, args.megapixels)
        settings = Settings(home=tmpd / "home")

        t0 = time.perf_counter()
        n = 0
        for p in corpus:
            for item in iter_file(p, settings.limits):
                hash_item(item, settings.limits)
                n += 1
        single = n / (time.perf_counter() - t0)
        bound = single * args.workers

        rows = []
        for analyzers in (False, True):
            marks: list[tuple[float, int]] = []

            def progress(done: int, total: int, items: int, marks: list[tuple[float, int]] = marks) -> None:
                marks.append((time.perf_counter(), items))

            t0 = time.perf_counter()
            outcome = run_scan(
                [tmpd / "corpus"],
                tmpd / f"journal-{analyzers}",
                settings,
                ScanOptions(workers=args.workers, analyzers=analyzers),
                progress=progress,
            )
            wall = time.perf_counter() - t0
            # end to end includes starting the worker processes (spawned interpreters importing numpy,
            # numba's cached kernels, the matcher); steady state runs from the first result to the last.
            rate = outcome.summary.items / wall
            (t_first, n_first), (t_last, n_last) = marks[0], marks[-1]
            steady = (n_last - n_first) / (t_last - t_first)
            rows.append(
                {
                    "analyzers": analyzers,
                    "items_per_s": round(rate, 2),
                    "of_bound": round(rate / bound, 3),
                    "steady_items_per_s": round(steady, 2),
                    "steady_of_bound": round(steady / bound, 3),
                    "startup_s": round(t_first - t0, 2),
                }
            )

    print(
        f"corpus: {args.count} JPEGs of ~{args.megapixels} MP, "
        f"workers: {args.workers}, cores: {os.cpu_count()}"
    )
    print(f"hashing, one process: {single:8.1f} images/s  → bound for {args.workers} workers: {bound:.1f}/s")
    print(f"{'scan':<24}{'items/s':>9}{'of bound':>10}{'steady/s':>10}{'of bound':>10}{'start-up s':>12}")
    for r in rows:
        label = "hash+match+analyzers" if r["analyzers"] else "hash+match"
        print(
            f"{label:<24}{r['items_per_s']:>9.1f}{r['of_bound']:>10.0%}"
            f"{r['steady_items_per_s']:>10.1f}{r['steady_of_bound']:>10.0%}{r['startup_s']:>12.2f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "bench": "scan",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "count": args.count,
        "megapixels": args.megapixels,
        "workers": args.workers,
        "hash_single_process_per_s": round(single, 2),
        "bound_per_s": round(bound, 2),
        "scan": rows,
    }
    (RESULTS / "scan.json").write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
