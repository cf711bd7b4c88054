"""The picture without its top or its bottom band, where reposts lay captions, watermarks and logos.

A caption across a smooth picture moves its PDQ 90-110 bits and takes the corners the keypoint verifier
needs, and nothing done to the query alone can lift it off. What both sides can do is hash the part of the
picture such an overlay leaves alone. A bank entry made from media keeps the PDQs of its picture without the
top band and without the bottom band, as derived entries (``vigie.banks.ingest.DERIVED``). A query is hashed
the same two ways, so a copy captioned at the bottom meets the entry's ``cut_bottom`` with its own.
"""

from __future__ import annotations

import numpy as np

from vigie.signals.pdq import MIN_QUALITY, MIRROR, box_size, hash_pixels, hash_pixels_mirrored

CUT = 0.25
"""The share of the height a band takes: meme captions, repost handles and corner logos sit within it."""


NAMES = ("cut_top", "cut_bottom")
"""The cuts' names, as query variants and as a bank entry's derived entries."""


def band_rows(h: int) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of a picture ``h`` rows high without its top band and without its bottom."""
    k = round(h * CUT)
    return dict(zip(NAMES, ((k, h), (0, h - k)), strict=True))


def band_hashes(
    px: np.ndarray, full_size: tuple[int, int], mirrored: bool = False
) -> tuple[dict[str, str], list[str]]:
    """PDQs of ``px`` without each band, by name, and those of cuts too flat to match by (quality < 50).
    With ``mirrored``, each cut's left–right mirror too (``cut_top_mirror``, …), for a query: a mirrored
    copy with a caption meets the entry's cut through it.

    ``px`` are luma (or RGB) pixels of an image of ``full_size``, a reduced decode hashed as the same rows
    of the full image would be (see :func:`hash_pixels`). Flat cuts are left to pick entries for the
    keypoint verifier only, as a bank keeps its own flat cuts as hints."""
    out: dict[str, str] = {}
    flat: list[str] = []
    for name, (b0, b1) in band_rows(px.shape[0]).items():
        band, size = px[b0:b1], box_size(px, (0, b0, px.shape[1], b1), full_size)
        hsh, mirror = hash_pixels_mirrored(band, size) if mirrored else (hash_pixels(band, size), None)
        if hsh.quality >= MIN_QUALITY:
            out[name] = hsh.hex
            if mirror is not None:
                out[name + MIRROR] = mirror
        elif hsh.quality > 0:
            flat.append(hsh.hex)
    return out, flat


def is_cut(name: str) -> bool:
    """Whether a query variant is a band cut (or a cut's mirror)."""
    return name.removesuffix(MIRROR) in NAMES
