"""Random hash values for tests: stand-ins that never come from any real hash list."""

from __future__ import annotations

import random

HEX = "0123456789abcdef"


def rhex(n: int, rng: random.Random) -> str:
    """n random hex characters."""
    return "".join(rng.choice(HEX) for _ in range(n))


def flip(h: str, bits: int, rng: random.Random) -> str:
    """``h`` with ``bits`` distinct bits flipped: a near-duplicate at exactly that distance."""
    v = int(h, 16)
    for b in rng.sample(range(256), bits):
        v ^= 1 << b
    return f"{v:064x}"
