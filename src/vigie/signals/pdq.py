"""PDQ perceptual hash: a numba implementation of Meta's algorithm that is conformant by construction.

PDQ = luminance → two passes of a box ("Jarosz") filter per axis → sample 64×64 → quality from gradients →
16×16 DCT → bits above the median. Box filters along different axes commute, so only the filtered values at
the 64×64 sample points are needed: each is a separable weighted sum of luminance whose weights we derive
once per image size. Fed the same pixels this matches ``pdqhash`` bit for bit.

For large JPEGs the decoder can hand back a 1/2, 1/4 or 1/8 scale image almost for free (DCT scaling).
We then sum the full-resolution filter weights over each reduced pixel, which emulates the reference filter
instead of approximating it; keeping the reduced short side ≥ 640 px stays within PDQ's conformance rule
(≤ 10 bits from the reference at quality ≥ 80; see bench/bench_hash.py for the measured drift).
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from PIL import Image

#: Reduced decodes keep at least this many pixels on the short side (512 measured 18 bits drift on a
#: textured photo; 640 stays within the 10-bit rule on every shared photo at 1–12 MP: bench/bench_hash.py).
DRAFT_MIN_SIDE = 640
#: The usual matching threshold (Hamming distance) and minimum quality, per Meta's guidance.
MATCH_DISTANCE = 31
MIN_QUALITY = 50
#: Like the reference, images narrower or shorter than this get the all-zero hash with quality 0.
MIN_HASHABLE_DIM = 5
_ZERO = "0" * 64


@dataclass(frozen=True)
class PDQHash:
    """256 bits (hex, 64 chars) and a 0–100 quality; low quality (< 50) hashes should not be matched."""

    hex: str
    quality: int


def _box_windows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive input span [lo, hi] averaged by each output of PDQ's 1-D box filter over n samples."""
    win = (n + 127) // 128
    half = (win + 2) // 2
    o = np.arange(n)
    return np.maximum(0, o - win + half), np.minimum(n - 1, o + half - 1)


@functools.lru_cache(maxsize=512)
def _weights(full_n: int, factor: int, reduced_n: int) -> np.ndarray:
    """(64, reduced_n) weights: two full-resolution box passes, sampled at PDQ's 64 points, binned."""
    lo, hi = _box_windows(full_n)
    cnt = (hi - lo + 1).astype(np.float64)
    out = np.zeros((64, reduced_n), np.float64)
    for i in range(64):
        o = int(((i + 0.5) * full_n) / 64)
        w = np.zeros(reduced_n * factor, np.float64)
        for k in range(lo[o], hi[o] + 1):
            w[lo[k] : hi[k] + 1] += 1.0 / (cnt[o] * cnt[k])
        out[i] = w.reshape(reduced_n, factor).sum(axis=1) if factor > 1 else w
    out.setflags(write=False)
    return out.astype(np.float32)


@njit(cache=True, nogil=True)
def _filter_sample(rgb: np.ndarray, wv: np.ndarray, wh: np.ndarray) -> np.ndarray:  # pragma: no cover - jit
    h, w, _ = rgb.shape
    los = np.empty(64, np.int64)
    his = np.empty(64, np.int64)
    for j in range(64):
        lo = 0
        while lo < w - 1 and wh[j, lo] == 0.0:
            lo += 1
        hi = w - 1
        while hi > lo and wh[j, hi] == 0.0:
            hi -= 1
        los[j] = lo
        his[j] = hi
    t = np.zeros((h, 64), np.float32)
    row = np.empty(w, np.float32)
    rc = np.float32(0.299)
    gc = np.float32(0.587)
    bc = np.float32(0.114)
    for y in range(h):
        if not wv[:, y].any():
            continue
        for x in range(w):
            r = np.float32(rgb[y, x, 0])
            g = np.float32(rgb[y, x, 1])
            b = np.float32(rgb[y, x, 2])
            row[x] = rc * r + gc * g + bc * b
        for j in range(64):
            s = np.float32(0.0)
            for x in range(los[j], his[j] + 1):
                s += wh[j, x] * row[x]
            t[y, j] = s
    out = np.zeros((64, 64), np.float32)
    for i in range(64):
        for y in range(h):
            wy = wv[i, y]
            if wy != 0.0:
                for j in range(64):
                    out[i, j] += wy * t[y, j]
    return out


def _dct_matrix() -> np.ndarray:
    d = np.empty((16, 64), np.float32)
    scale = math.sqrt(2.0 / 64.0)
    for i in range(16):
        for j in range(64):
            d[i, j] = scale * math.cos((math.pi / 2 / 64.0) * (i + 1) * (2 * j + 1))
    return d


_DCT = _dct_matrix()


def _quality(buf: np.ndarray) -> int:
    """Gradient sum over the 64×64 image, as in the reference (0 = flat, 100 = plenty of detail)."""
    d1 = ((buf[:-1, :] - buf[1:, :]) * np.float32(100.0 / 255.0)).astype(np.float32)
    d2 = ((buf[:, :-1] - buf[:, 1:]) * np.float32(100.0 / 255.0)).astype(np.float32)
    total = int(np.abs(d1).astype(np.int32).sum() + np.abs(d2).astype(np.int32).sum())
    return min(100, total // 90)


def _bits_to_hex(coef: np.ndarray) -> str:
    bits = (coef > np.median(coef)).reshape(-1)[::-1]
    return np.packbits(bits).tobytes().hex()


def _coefficients(rgb: np.ndarray, full_size: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """16×16 DCT coefficients and quality of an RGB uint8 array, optionally a reduced decode of full_size."""
    h, w = rgb.shape[:2]
    fw, fh = full_size or (w, h)
    fv = 1 if fh == h else -(-fh // h)
    fhz = 1 if fw == w else -(-fw // w)
    buf = _filter_sample(np.ascontiguousarray(rgb), _weights(fh, fv, h), _weights(fw, fhz, w))
    return _DCT @ buf @ _DCT.T, _quality(buf)


def hash_array(rgb: np.ndarray) -> PDQHash:
    """PDQ of an (h, w, 3) uint8 RGB array: bit-identical to ``pdqhash.compute`` on the same array."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (h, w, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    if min(rgb.shape[:2]) < MIN_HASHABLE_DIM:
        return PDQHash(_ZERO, 0)
    coef, q = _coefficients(rgb)
    return PDQHash(_bits_to_hex(coef), q)


def _decode_for_pdq(im: Image.Image) -> tuple[np.ndarray, tuple[int, int]]:
    """RGB pixels, reduced by the JPEG decoder where that stays conformant; returns (pixels, full size)."""
    full = im.size
    if im.format == "JPEG" and min(full) >= 2 * DRAFT_MIN_SIDE:
        k = DRAFT_MIN_SIDE / min(full)
        im.draft("RGB", (max(1, math.ceil(full[0] * k)), max(1, math.ceil(full[1] * k))))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im), full


def hash_image(im: Image.Image, dihedral: bool = False) -> tuple[PDQHash, list[str] | None]:
    """PDQ of an opened (not yet loaded) PIL image, and its 8 dihedral variants when asked."""
    rgb, full = _decode_for_pdq(im)
    if min(full) < MIN_HASHABLE_DIM:
        return PDQHash(_ZERO, 0), ([_ZERO] * 8 if dihedral else None)
    coef, q = _coefficients(rgb, full)
    variants = dihedral_hexes(coef) if dihedral else None
    return PDQHash(_bits_to_hex(coef), q), variants


def hash_bytes(data: bytes) -> PDQHash:
    """Convenience for tests and tools: PDQ of encoded image bytes (no limits: use vigie.media first)."""
    with Image.open(io.BytesIO(data)) as im:
        return hash_image(im)[0]


#: Names of the dihedral variants, in the order :func:`dihedral_hexes` returns them (PIL's transposes).
DIHEDRAL_NAMES = (
    "original",
    "mirror_lr",
    "mirror_tb",
    "rot180",
    "transpose",
    "rot90",
    "rot270",
    "transverse",
)


def dihedral_hexes(coef: np.ndarray) -> list[str]:
    """Hashes of the 8 rotations/flips, from the DCT alone (no rehash): original first.

    Mirroring an axis negates the coefficients of odd frequency along it (frequencies start at 1), and a
    transpose swaps the axes; rotations are compositions of the two.
    """
    sign = np.where(np.arange(16) % 2 == 0, -1.0, 1.0).astype(np.float32)
    mx = coef * sign[None, :]  # mirror left-right
    my = coef * sign[:, None]  # mirror top-bottom
    mxy = mx * sign[:, None]  # rotate 180
    t = coef.T
    return [_bits_to_hex(c) for c in (coef, mx, my, mxy, t, mx.T, my.T, mxy.T)]


def distance(a: str, b: str) -> int:
    """Hamming distance between two PDQ hex strings."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
