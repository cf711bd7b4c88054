"""A weak PDQ's stable bits: the few bits of a nearly flat hash that a re-encoded or resized copy keeps.

Each PDQ bit says whether one DCT coefficient lies above the median of all 256. Where the low frequencies are
nearly flat (periodic stripes, a vignette: the bank reports such an entry as weak), most coefficients sit a
fraction of a grey level from that median, so JPEG, noise or a resize flips them at random and a true copy
lands 40–85 bits away, where unrelated pictures begin. The coefficients farthest from the median keep their
side: on the robustness benchmark's weak originals, a copy re-encoded at quality 30, resized to half,
brightened or noised differs on at most 8 of the 64 farthest (see :data:`MAX_DIFFERING` for where
unrelated pictures begin). The bank keeps those 64 positions as a mask (which coefficients are large, never
their values, nor pixels), and the verifier promotes a candidate when the query agrees on them.
"""

from __future__ import annotations

from typing import TypeGuard

import numpy as np

from vigie.signals.pdq import coefficients, dct_spread

STABLE_BITS = 64
"""Positions kept per weak entry: at 48 unrelated pictures agree on nearly all of them (layout is what the
largest low frequencies say), at 96 a re-encoded copy's flips reach into them."""
MAX_DIFFERING = 8
"""Stable bits a query may differ on and still verify. On the robustness benchmark, copies of the weak
originals differ on 0–6 under JPEG q30–75, noise, blur and tone changes, 8 at half size and 11–12 at a
quarter (crops and tilts on 9–26: not this test's job); at 12, five unrelated queries verified on 9 (a flat
picture's framed sheet, turned on its diagonal) and one on 12, so 8 leaves the quarter-size copies out. Flips
and rotations are no longer compared (``banks/verify.py``), which puts the nearest unrelated query at 17, but
an upright picture with that sheet's layout would come as near, so the bound stays at 8."""


def stable_mask(coef: np.ndarray) -> str:
    """Hex mask (in PDQ's bit order) of the STABLE_BITS coefficients farthest from their median."""
    far = np.abs(coef - np.median(coef)).reshape(-1)[::-1]  # the same order as the hash's bits
    keep = np.zeros(far.size, dtype=bool)
    keep[np.argsort(-far, kind="stable")[:STABLE_BITS]] = True
    return np.packbits(keep).tobytes().hex()


def profile(pixels: np.ndarray) -> tuple[float, str]:
    """DCT spread (see :data:`vigie.signals.pdq.WEAK_SPREAD`) and stable mask of uint8 pixels, one DCT."""
    coef = coefficients(pixels)
    return dct_spread(coef), stable_mask(coef)


def valid_mask(mask: object) -> TypeGuard[str]:
    """Whether ``mask`` is one :func:`stable_mask` writes: 64 hex digits with STABLE_BITS bits set (a
    shorter or sparser one, from a hand-written import, would let nearly anything agree with it)."""
    if not isinstance(mask, str) or len(mask) != 64 or not set(mask) <= set("0123456789abcdef"):
        return False
    return int(mask, 16).bit_count() == STABLE_BITS


def differing(a: str, b: str, mask: str) -> int:
    """How many of the masked bits two PDQ hex hashes differ on."""
    return ((int(a, 16) ^ int(b, 16)) & int(mask, 16)).bit_count()
