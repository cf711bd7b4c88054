"""vPDQ: one PDQ per sampled video frame, compared later as a bag of frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vigie.media.video import sample_frames
from vigie.settings import MediaLimits
from vigie.signals.borders import trimmed_hashes
from vigie.signals.pdq import (
    DIHEDRAL_NAMES,
    MIRROR,
    PDQHash,
    hash_array,
    hash_array_dihedral,
    hash_pixels,
    hash_pixels_mirrored,
    luma,
)


@dataclass(frozen=True)
class FrameHash:
    seconds: float
    pdq: str
    quality: int
    variants: dict[str, str] | None = field(default=None, compare=False)
    """Query frames only, by transform name: the frame mirrored and turned, the picture inside any bars,
    and the middle band of a frame of the other orientation. Re-posted video is often mirrored or set in a
    frame of another shape."""
    views: dict[str, PDQHash] | None = field(default=None, compare=False)
    """Bank frames only: the parts of the frame a re-post may keep alone (:func:`frame_views`)."""

    def to_json(self, variants: bool = False) -> list[Any]:
        """``[seconds, PDQ hex, quality]``, and with ``variants`` the frame's :attr:`variants` after them."""
        out: list[Any] = [round(self.seconds, 3), self.pdq, self.quality]
        if variants and self.variants:
            out.append(self.variants)
        return out


def _middle_band(rgb: np.ndarray) -> tuple[str, np.ndarray] | None:
    """The middle of a frame in the other orientation, where a re-post between orientations puts or keeps
    the picture: the 16:9 band of a portrait frame (``"16x9"``), the 9:16 column of a landscape one."""
    h, w = rgb.shape[:2]
    if h >= 1.3 * w:
        band = round(w * 9 / 16)
        return "16x9", rgb[(h - band) // 2 : (h + band) // 2]
    if w >= 1.3 * h:
        band = round(h * 9 / 16)
        return "9x16", np.ascontiguousarray(rgb[:, (w - band) // 2 : (w + band) // 2])
    return None


def frame_views(gray: np.ndarray) -> dict[str, PDQHash]:
    """What a re-post may keep of a known frame (its :func:`~vigie.signals.pdq.luma`, or RGB), hashed
    alone: its middle after a zoom that crops 10% a side (``crop_10``), and the middle band that cropping
    it to fill a screen of the other orientation keeps (``fill_9x16``, ``fill_16x9``). A query frame
    cannot be uncropped, so the bank keeps these."""
    h, w = gray.shape[:2]
    out = {"crop_10": hash_pixels(gray[h // 10 : h - h // 10, w // 10 : w - w // 10])}
    if (middle := _middle_band(gray)) is not None:
        out[f"fill_{middle[0]}"] = hash_pixels(middle[1])
    return out


def _query_variants(rgb: np.ndarray, gray: np.ndarray, dihedral: list[str]) -> dict[str, str]:
    """A query frame turned and mirrored (``dihedral``: its 8 hashes, plain first), the picture inside
    any bars (searched on ``rgb``, hashed from its luma ``gray``), and the middle band of a frame of the
    other orientation (over a blurred copy: no bars); the last two with their left–right mirrors too
    (``trim_mirror``, ``centre_16x9_mirror``: a re-post mirrored, then set in a portrait frame)."""
    out = dict(zip(DIHEDRAL_NAMES[1:], dihedral[1:], strict=True))
    trims = trimmed_hashes(rgb, (rgb.shape[1], rgb.shape[0]), gray, mirrored=True)
    out.update((k, v) for k, v in trims.items() if v != dihedral[0])
    if (middle := _middle_band(gray)) is not None:
        centre, mirror = hash_pixels_mirrored(middle[1])
        out[f"centre_{middle[0]}"], out[f"centre_{middle[0]}{MIRROR}"] = centre.hex, mirror
    return out


def hash_video(
    data: bytes, limits: MediaLimits, fps: float = 1.0, variants: bool = False, views: bool = False
) -> list[FrameHash]:
    """PDQ of about ``fps`` frames per second; raises MediaError when no frame decodes.

    ``variants`` also hashes each frame's :attr:`FrameHash.variants`, as matching a query needs (the flips
    come from the same DCT; the bars search costs ~4 ms a frame at 720p); otherwise ``views`` hashes each
    frame's :attr:`FrameHash.views`, as a bank entry needs.
    """
    out = []
    for t, rgb in sample_frames(data, limits, fps):
        if variants:  # every hash of the frame from its luma, colour converted once (the same bits)
            gray = luma(rgb)
            h, hexes = hash_array_dihedral(gray)
            out.append(
                FrameHash(t, h.hex, h.quality, _query_variants(rgb, gray, hexes) if h.quality else None)
            )
        elif views:
            gray = luma(rgb)
            h = hash_pixels(gray)
            out.append(FrameHash(t, h.hex, h.quality, views=frame_views(gray)))
        else:
            h = hash_array(rgb)
            out.append(FrameHash(t, h.hex, h.quality))
    return out
