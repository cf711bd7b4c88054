"""`make bench`: run every benchmark in turn; each prints its table and writes bench/results/<name>.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["bench_hash.py", "bench_index.py", "bench_scan.py", "bench_provenance.py", "bench_textrisk.py"]


def main() -> None:
    failed = []
    for name in ORDER:
        script = HERE / name
        if not script.exists():
            continue
        print(f"\n=== {name}", flush=True)
        if subprocess.run([sys.executable, str(script), *sys.argv[1:2]]).returncode:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
