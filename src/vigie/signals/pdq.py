"""PDQ perceptual hash: a numba implementation of Meta's algorithm, conformant by construction.

PDQ = luminance → two passes of a box ("Jarosz") filter per axis → sample 64×64 → quality from gradients →
16×16 DCT → bits above the median. Box filters along different axes commute, so only the filtered values at
the 64×64 sample points are needed: each is a separable weighted sum of luminance whose weights we derive
once per image size. Fed the same pixels this matches ``pdqhash`` (the reference) to the bit.

Fast path for JPEG (most photos): the decoder hands back the luma (Y) plane only, at 1/2, 1/4 or 1/8 scale
(DCT scaling, no colour conversion, no chroma upsampling). We sum the full-resolution filter weights over
each reduced pixel, which emulates the reference filter instead of approximating it. Two measured effects
bound the drift (bench/bench_hash.py):

* reduction: keeping the reduced short side ≥ :data:`DRAFT_MIN_SIDE` stays within a few bits;
* Y instead of luma of the decoded RGB: rounding in the colour conversion shifts luminance by a fraction
  of a grey level, correlated with colour. Harmless unless the image has almost no low-frequency
  structure, where the hash is decided by such tiny differences; we detect that case from the DCT spread
  (:data:`FRAGILE_SPREAD`) and rehash from the fully decoded RGB pixels, exactly as the reference does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from PIL import Image, JpegImagePlugin

#: Reduced JPEG decodes keep at least this many pixels on the short side: 1/4 scale of a 1 MP photo
#: (~200 px) drifted 12 bits on a stormy sky; ≥ 340 px stayed ≤ 4 bits on every shared photo at 1–12 MP.
DRAFT_MIN_SIDE = 384
#: Median absolute deviation of the 256 DCT coefficients (grey levels) below which the luma-only fast path
#: is not trusted: measured Y-vs-RGB-luma errors reach ~2.8, a fine wood texture spreads only ~0.5.
FRAGILE_SPREAD = 4.0
#: The usual matching threshold (Hamming distance) and minimum quality, per Meta's guidance.
MATCH_DISTANCE = 31
MIN_QUALITY = 50
#: Largest image (pixels) whose luma a query keeps for its other hashes: 64 MB of float32.
LUMA_MAX_PIXELS = 16_000_000
#: Like the reference, images narrower or shorter than this get the all-zero hash with quality 0.
MIN_HASHABLE_DIM = 5
_ZERO = "0" * 64


@dataclass(frozen=True)
class PDQHash:
    """256 bits (hex, 64 chars) and a 0–100 quality; low quality (< 50) hashes should not be matched."""

    hex: str
    quality: int


# --------------------------------------------------------------------------------------------------------
# Filter weights: what the reference's two box passes + 64-point decimation do, as one sparse matrix/axis.


@njit(cache=True, nogil=True)
def _axis_weights(full_n: int, factor: int, reduced_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse (64, reduced_n) weights as (first index, end index, packed weights) per sample."""
    win = (full_n + 127) // 128
    half = (win + 2) // 2
    lo = np.zeros(64, np.int64)
    hi = np.zeros(64, np.int64)
    for i in range(64):  # support: the first pass's window around each pixel of the second's
        o = int(((i + 0.5) * full_n) / 64)
        lo_o = max(0, o - win + half)
        hi_o = min(full_n - 1, o + half - 1)
        lo[i] = max(0, lo_o - win + half) // factor
        hi[i] = min(reduced_n - 1, min(full_n - 1, hi_o + half - 1) // factor) + 1
    span = int((hi - lo).max())
    packed = np.zeros((64, span), np.float32)
    diff = np.zeros(full_n + 1, np.float64)
    for i in range(64):
        o = int(((i + 0.5) * full_n) / 64)
        lo_o = max(0, o - win + half)
        hi_o = min(full_n - 1, o + half - 1)
        cnt_o = hi_o - lo_o + 1
        a = max(0, lo_o - win + half)
        b = min(full_n - 1, hi_o + half - 1)
        diff[a : b + 2] = 0.0
        for k in range(lo_o, hi_o + 1):
            lo_k = max(0, k - win + half)
            hi_k = min(full_n - 1, k + half - 1)
            c = 1.0 / (cnt_o * (hi_k - lo_k + 1))
            diff[lo_k] += c
            diff[hi_k + 1] -= c
        acc = 0.0
        for x in range(a, b + 1):
            acc += diff[x]
            xr = x // factor
            if xr < reduced_n:
                packed[i, xr - lo[i]] += acc
    return lo, hi, packed


@functools.lru_cache(maxsize=1024)
def _weights(full_n: int, reduced_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    factor = 1 if full_n == reduced_n else -(-full_n // reduced_n)
    return _axis_weights(full_n, factor, reduced_n)


# --------------------------------------------------------------------------------------------------------
# The 64×64 downsample. Vertical pass first: whole rows, contiguous, so the inner loop vectorises.


@njit(cache=True, nogil=True)
def _rows_gray(g: np.ndarray, vlo: np.ndarray, vhi: np.ndarray, vw: np.ndarray) -> np.ndarray:
    h, w = g.shape
    rows = np.zeros((64, w), np.float32)
    buf = np.empty(w, np.float32)
    i0 = 0
    for y in range(h):
        while i0 < 64 and vhi[i0] <= y:
            i0 += 1
        if i0 == 64:
            break
        if vlo[i0] > y:
            continue
        src = g[y]
        for x in range(w):
            buf[x] = np.float32(src[x])
        i = i0
        while i < 64 and vlo[i] <= y:
            if y < vhi[i]:
                c = vw[i, y - vlo[i]]
                r = rows[i]
                for x in range(w):
                    r[x] += c * buf[x]
            i += 1
    return rows


@njit(cache=True, nogil=True)
def _rows_rgb(rgb: np.ndarray, vlo: np.ndarray, vhi: np.ndarray, vw: np.ndarray) -> np.ndarray:
    h, w, _ = rgb.shape
    rows = np.zeros((64, w), np.float32)
    buf = np.empty(w, np.float32)
    i0 = 0
    for y in range(h):
        while i0 < 64 and vhi[i0] <= y:
            i0 += 1
        if i0 == 64:
            break
        if vlo[i0] > y:
            continue
        for x in range(w):
            # same arithmetic as pdqhash: float64 products summed left to right, then float32
            buf[x] = np.float32(rgb[y, x, 0] * 0.299 + rgb[y, x, 1] * 0.587 + rgb[y, x, 2] * 0.114)
        i = i0
        while i < 64 and vlo[i] <= y:
            if y < vhi[i]:
                c = vw[i, y - vlo[i]]
                r = rows[i]
                for x in range(w):
                    r[x] += c * buf[x]
            i += 1
    return rows


@njit(cache=True, nogil=True)
def _cols(rows: np.ndarray, hlo: np.ndarray, hhi: np.ndarray, hw: np.ndarray) -> np.ndarray:
    out = np.empty((64, 64), np.float32)
    for i in range(64):
        r = rows[i]
        for j in range(64):
            s = np.float32(0.0)
            lo = hlo[j]
            for x in range(lo, hhi[j]):
                s += hw[j, x - lo] * r[x]
            out[i, j] = s
    return out


def _downsample(pixels: np.ndarray, full_size: tuple[int, int]) -> np.ndarray:
    """64×64 filtered luminance of ``pixels`` (gray (h, w) or RGB (h, w, 3) uint8) decoded from full_size."""
    h, w = pixels.shape[:2]
    fw, fh = full_size
    vlo, vhi, vw = _weights(fh, h)
    hlo, hhi, hw = _weights(fw, w)
    pixels = np.ascontiguousarray(pixels)
    rows = _rows_gray(pixels, vlo, vhi, vw) if pixels.ndim == 2 else _rows_rgb(pixels, vlo, vhi, vw)
    return _cols(rows, hlo, hhi, hw)


@njit(cache=True, nogil=True)
def _luma(rgb: np.ndarray) -> np.ndarray:
    """Float32 luma of RGB pixels by the arithmetic of :func:`_rows_rgb` (and so of pdqhash): hashed as
    luma, it gives the same bits, and a query's other hashes need not convert colour again."""
    h, w, _ = rgb.shape
    out = np.empty((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            out[y, x] = np.float32(rgb[y, x, 0] * 0.299 + rgb[y, x, 1] * 0.587 + rgb[y, x, 2] * 0.114)
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    """What to take an RGB image's several hashes from, converting colour once: its float32 luma, which
    hashes to the same bits as the RGB; past :data:`LUMA_MAX_PIXELS` the RGB itself, since a copy would
    cost more memory than converting colour on each hash."""
    if rgb.shape[0] * rgb.shape[1] > LUMA_MAX_PIXELS:
        return rgb
    return _luma(np.ascontiguousarray(rgb))


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


def _median(values: np.ndarray) -> np.floating:
    """``np.median`` of an even-sized array, the same value without its generic reduction machinery."""
    flat = values.reshape(-1)
    mid = flat.size // 2
    part = np.partition(flat, (mid - 1, mid))
    return (part[mid - 1] + part[mid]) / flat.dtype.type(2)


def _bits_to_hex(coef: np.ndarray, median: np.floating | None = None) -> str:
    bits = (coef > (_median(coef) if median is None else median)).reshape(-1)[::-1]
    return np.packbits(bits).tobytes().hex()


#: Below this DCT spread (grey levels) a PDQ says little about its image, whatever its quality: the low
#: frequencies are nearly flat (periodic stripes, fine regular textures), so re-encoding or resizing moves
#: the hash by tens of bits. Such bank entries are reported as weak (exact hashes still match them).
WEAK_SPREAD = 1.0


def dct_spread(coef: np.ndarray) -> float:
    """How far, in grey levels, PDQ's DCT coefficients (:func:`coefficients`) typically sit from their
    median (their median absolute deviation: how far a typical bit is from flipping), a measure of how much
    the hash says that its gradient-based quality does not capture."""
    return float(_median(np.abs(coef - _median(coef))))


def coefficients(pixels: np.ndarray) -> np.ndarray:
    """PDQ's 16×16 DCT coefficients of uint8 pixels (RGB or luma), whose signs against their median are
    the hash's bits."""
    return _coefficients(np.ascontiguousarray(pixels))[0]


def _coefficients(pixels: np.ndarray, full_size: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """16×16 DCT coefficients and quality of uint8 pixels (RGB or luma), optionally a reduced decode."""
    h, w = pixels.shape[:2]
    buf = _downsample(pixels, full_size or (w, h))
    return _DCT @ buf @ _DCT.T, _quality(buf)


def hash_array(rgb: np.ndarray) -> PDQHash:
    """PDQ of an (h, w, 3) uint8 RGB array: bit-identical to ``pdqhash.compute`` on the same array."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (h, w, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    if min(rgb.shape[:2]) < MIN_HASHABLE_DIM:
        return PDQHash(_ZERO, 0)
    coef, q = _coefficients(rgb)
    return PDQHash(_bits_to_hex(coef), q)


def hash_array_dihedral(rgb: np.ndarray) -> tuple[PDQHash, list[str]]:
    """:func:`hash_array` of RGB (or of its :func:`luma`) and the hashes of its 8 rotations and flips
    (original first), from one DCT."""
    if min(rgb.shape[:2]) < MIN_HASHABLE_DIM:
        return PDQHash(_ZERO, 0), [_ZERO] * 8
    coef, q = _coefficients(rgb)
    variants = dihedral_hexes(coef)
    return PDQHash(variants[0], q), variants


def _jpeg_scale(full: tuple[int, int]) -> int:
    """Largest DCT scaling denominator (1, 2, 4, 8) that keeps the short side ≥ DRAFT_MIN_SIDE."""
    for s in (8, 4, 2):
        if -(-min(full) // s) >= DRAFT_MIN_SIDE:
            return s
    return 1


def _jpeg_coefficients(
    im: Image.Image, keep_luma: bool = False
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray | None] | None:
    """Coefficients, the pixels they came from and (``keep_luma``) those pixels' luma, from a reduced
    luma-only JPEG decode; None (nothing decoded) where that does not apply.

    A fragile hash (tiny DCT spread) is recomputed from the full RGB decode, reopened from the same source
    since ``draft`` cannot be undone.
    """
    if not isinstance(im, JpegImagePlugin.JpegImageFile) or im.mode not in ("RGB", "L") or len(im.tile) != 1:
        return None
    full = im.size
    source = im.fp  # kept to reopen from: loading drops the image's reference to it
    s = _jpeg_scale(full)
    im.draft("L", (full[0] // s, full[1] // s))
    if im.mode != "L":  # pragma: no cover - draft declined (not expected for a single-tile JPEG)
        return _exact_coefficients(_exact_pixels(im), keep_luma)
    luma = np.asarray(im)
    coef, q = _coefficients(luma, full)
    if q < MIN_QUALITY or dct_spread(coef) >= FRAGILE_SPREAD:
        return coef, q, luma, luma if keep_luma else None
    with _reopen(im, source) as again:  # decided by sub-grey-level differences: take exact pixels
        return _exact_coefficients(_exact_pixels(again), keep_luma)


def _exact_coefficients(
    px: np.ndarray, keep_luma: bool
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray | None]:
    """Coefficients of RGB pixels, the pixels, and (``keep_luma``) their :func:`luma`, converted once."""
    if not keep_luma:
        return (*_coefficients(px), px, None)
    gray = luma(px)
    return (*_coefficients(gray), px, gray)


def _reopen(im: Image.Image, source: object) -> Image.Image:
    """The same image, not yet decoded: from the caller's file object, else from its file name."""
    if source is not None and not getattr(source, "closed", True):
        source.seek(0)  # type: ignore[attr-defined]
        return Image.open(source)  # type: ignore[arg-type]
    return Image.open(im.filename)  # type: ignore[attr-defined]


def _exact_pixels(im: Image.Image) -> np.ndarray:
    return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))


def hash_image(im: Image.Image, dihedral: bool = False) -> tuple[PDQHash, list[str] | None]:
    """PDQ of an opened (not yet loaded) PIL image, and its 8 dihedral variants when asked.

    Decoding errors propagate: callers wrap this in :func:`vigie.media.decode_errors`.
    """
    h, variants, _, _ = hash_image_pixels(im, dihedral)
    return h, variants


def hash_image_pixels(
    im: Image.Image, dihedral: bool = False
) -> tuple[PDQHash, list[str] | None, np.ndarray | None, np.ndarray | None]:
    """:func:`hash_image` plus the pixels it hashed (reduced luma for large JPEGs, else RGB) and, with
    ``dihedral``, their luma (float32 for RGB; the RGB itself past :data:`LUMA_MAX_PIXELS`), for the
    query's other hashes to reuse.

    A reduced JPEG decode shrinks ``im.size`` (``draft``): read the full size before calling, to know
    what the returned pixels stand for.
    """
    if min(im.size) < MIN_HASHABLE_DIM:
        return PDQHash(_ZERO, 0), ([_ZERO] * 8 if dihedral else None), None, None
    fast = _jpeg_coefficients(im, keep_luma=dihedral)
    coef, q, px, gray = fast if fast is not None else _exact_coefficients(_exact_pixels(im), dihedral)
    variants = dihedral_hexes(coef) if dihedral else None
    return PDQHash(variants[0] if variants else _bits_to_hex(coef), q), variants, px, gray


def hash_pixels(px: np.ndarray, full_size: tuple[int, int] | None = None) -> PDQHash:
    """PDQ of luma (h, w) (uint8, or float32 as :func:`hash_image_pixels` hands it back) or RGB (h, w, 3)
    uint8 pixels, optionally a reduced decode of ``full_size``."""
    if min(full_size or px.shape[1::-1]) < MIN_HASHABLE_DIM:
        return PDQHash(_ZERO, 0)
    coef, q = _coefficients(np.ascontiguousarray(px), full_size)
    return PDQHash(_bits_to_hex(coef), q)


MIRROR = "_mirror"
"""Suffix of a query variant that is another's left–right mirror (``trim_mirror``, ``cut_top_mirror``)."""


def hash_pixels_mirrored(px: np.ndarray, full_size: tuple[int, int] | None = None) -> tuple[PDQHash, str]:
    """:func:`hash_pixels` and the hash of the pixels' left–right mirror, from one DCT (see
    :func:`dihedral_hexes`): a copy mirrored to evade matching and then framed or captioned meets its
    original through the mirror of the picture found inside it."""
    if min(full_size or px.shape[1::-1]) < MIN_HASHABLE_DIM:
        return PDQHash(_ZERO, 0), _ZERO
    coef, q = _coefficients(np.ascontiguousarray(px), full_size)
    mirror = coef * _ODD_COLUMNS[None, :]
    return PDQHash(_bits_to_hex(coef), q), _bits_to_hex(mirror)


def box_size(px: np.ndarray, box: tuple[int, int, int, int], full_size: tuple[int, int]) -> tuple[int, int]:
    """The full-resolution size of ``box`` (left, top, right, bottom) of ``px``, a reduced decode of an
    image of ``full_size``: what :func:`hash_pixels` is told, so the box is hashed as the same box of the
    full image would be (hashed against its reduced size, a fragile hash moves)."""
    x0, y0, x1, y1 = box
    return round((x1 - x0) * full_size[0] / px.shape[1]), round((y1 - y0) * full_size[1] / px.shape[0])


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


_ODD_COLUMNS = np.where(np.arange(16) % 2 == 0, -1.0, 1.0).astype(np.float32)
"""Mirroring an axis negates the coefficients of odd frequency along it (frequencies start at 1)."""


def dihedral_hexes(coef: np.ndarray) -> list[str]:
    """Hashes of the 8 rotations/flips, from the DCT alone (no rehash): original first.

    Mirroring an axis negates the coefficients of odd frequency along it (frequencies start at 1), and a
    transpose swaps the axes; rotations are compositions of the two.
    """
    sign = _ODD_COLUMNS
    mx = coef * sign[None, :]  # mirror left-right
    my = coef * sign[:, None]  # mirror top-bottom
    mxy = mx * sign[:, None]  # rotate 180
    out = [""] * 8
    for k, c in enumerate((coef, mx, my, mxy)):  # a transpose keeps the values, so their median
        med = _median(c)
        out[k], out[k + 4] = _bits_to_hex(c, med), _bits_to_hex(c.T, med)
    return out


def distance(a: str, b: str) -> int:
    """Hamming distance between two PDQ hex strings."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hex_to_bits(value: str) -> np.ndarray:
    """256 uint8 bits of a PDQ hex string, in ``pdqhash.compute``'s order."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(value), np.uint8))


def bits_to_hex(bits: np.ndarray) -> str:
    """PDQ hex of 256 bits in ``pdqhash.compute``'s order."""
    return np.packbits(np.asarray(bits, np.uint8)).tobytes().hex()
