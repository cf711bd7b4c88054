"""`make bench`: run every benchmark in turn; each prints its table and writes bench/results/<name>.json.

``--quick`` gives the long ones their short form. A benchmark whose reference tool is not installed (the
vpdq package, the wrk load generator) is skipped with what to install, never half run: its figures are
only worth having side by side with the reference.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


#: (script, arguments for --quick, whether its reference is installed, what to install when it is not)
BENCHMARKS: list[tuple[str, list[str], bool, str]] = [
    ("bench_hash.py", [], True, ""),
    ("bench_index.py", [], True, ""),
    ("bench_scan.py", ["--count", "400"], True, ""),
    ("bench_provenance.py", [], True, ""),
    ("bench_textrisk.py", [], True, ""),
    ("bench_robustness.py", ["--quick"], True, ""),
    ("bench_verifier.py", ["--quick"], True, ""),
    ("bench_verify_cost.py", [], True, ""),
    (
        "bench_video.py",
        ["--quick"],
        _module("vpdq"),
        "the vpdq package (apt-get install libavcodec-dev libavformat-dev libswscale-dev; .venv/bin/pip install vpdq)",
    ),
    ("bench_service.py", ["--seconds", "5"], shutil.which("wrk") is not None, "wrk (apt-get install wrk)"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short runs of the long benchmarks")
    args = ap.parse_args()
    failed, skipped = [], []
    for name, quick, available, needs in BENCHMARKS:
        print(f"\n=== {name}", flush=True)
        if not available:
            print(f"skipped: needs {needs}", flush=True)
            skipped.append(name)
            continue
        if subprocess.run([sys.executable, str(HERE / name), *(quick if args.quick else [])]).returncode:
            failed.append(name)
    if skipped:
        print(f"\nskipped (reference not installed): {', '.join(skipped)}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
