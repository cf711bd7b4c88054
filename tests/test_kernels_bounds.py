"""Compiled kernels under numba's bounds checking, on the inputs most likely to take an index past an edge."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_DEGENERATE = r"""
import io
import numpy as np
from PIL import Image
from vigie.media import Item
from vigie.settings import MediaLimits
from vigie.signals import hash_item
from vigie.analyzers import analyze_item
from vigie.index import PDQIndex
from vigie.signals.grid import grid_cells

rng = np.random.default_rng(0)
images = [np.full((300, 400), 128, np.uint8), np.zeros((24, 24), np.uint8), np.full((24, 900), 255, np.uint8)]
noise = rng.integers(0, 256, (240, 320), dtype=np.uint8)
framed = noise.copy(); framed[:9] = framed[-9:] = 0; framed[:, :9] = framed[:, -9:] = 0
top = noise.copy(); top[:100] = 7
stripes = np.zeros((200, 200), np.uint8); stripes[::2] = 255
bands = np.repeat(np.array([10, 200, 10, 200], np.uint8), 60)[:, None].repeat(300, axis=1)
images += [noise, framed, top, stripes, bands, stripes.T.copy()]
for a in images:
    grid_cells(a)
    grid_cells(np.ascontiguousarray(np.stack([a] * 3, axis=2)))
    buf = io.BytesIO()
    Image.fromarray(a).convert("RGB").save(buf, "PNG")
    item = Item("x.png", buf.getvalue(), "image/png")
    hash_item(item, MediaLimits(), dihedral=True)
    analyze_item(item)
for n in (0, 1, 3, 5000):  # the PDQ index, empty to a few thousand, at every radius a bank uses
    idx = PDQIndex()
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    if n:
        idx.add(np.arange(n, dtype=np.int64), codes)
    queries = np.concatenate([codes[:2], rng.integers(0, 256, (3, 32), dtype=np.uint8)])
    for radius in (0, 31, 70, 90, 256):
        idx.search(queries, radius)
print("in bounds")
"""


def test_compiled_kernels_stay_in_bounds_on_degenerate_images(tmp_path: Path) -> None:
    """numba does not check indexes: a kernel that reads past an array returns garbage, or crashes the
    process. The kernels that hash and analyse an image and search the PDQ index run here with bounds
    checked (a separate interpreter, its own cache) on flat, tiny, framed, half-plain, striped and banded
    images, and on indexes from empty to a few thousand hashes."""
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    run = subprocess.run(
        [sys.executable, "-c", _DEGENERATE], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0 and "in bounds" in run.stdout, run.stderr[-3000:]
