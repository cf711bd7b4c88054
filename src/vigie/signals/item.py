"""All signals of one item in one pass: the record behind ``vigie hash --json`` and every match."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigie.errors import MediaError
from vigie.media import Item, ItemError, decode_errors, is_video, iter_file, open_image
from vigie.media.image import LIMITS, REFUSED
from vigie.settings import MediaLimits
from vigie.signals.bands import band_hashes
from vigie.signals.borders import trimmed_hashes
from vigie.signals.crypto import crypto_hashes
from vigie.signals.grid import cell_hashes
from vigie.signals.pdq import hash_image_pixels
from vigie.signals.vpdq import FrameHash, hash_video


@dataclass
class ItemSignals:
    """Signals of one item. Crypto hashes are filled whenever bytes were read, even if decoding failed."""

    path: str
    media_type: str | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    pdq_dihedral: list[str] | None = None
    pdq_extra: dict[str, str] | None = None
    """Extra query hashes by name, e.g. ``trim``: the picture inside a frame (see ``borders.py``)."""
    pdq_hints: list[str] | None = None
    """Query hashes too flat to match by (quality < 50) that still pick entries for the keypoint verifier."""
    vpdq: list[FrameHash] | None = None
    error: str | None = None
    keypoints: dict[str, Any] | None = None
    """With ``keypoints``: the views the verifier takes of this image (``signals/views.py``), packed, and
    its hints, for a platform that hashes itself to send when it chooses to (never pixels, never stored)."""

    def variants(self) -> dict[str, str]:
        """The image's other query hashes by name: its flips and rotations (when hashed with ``dihedral``),
        the picture inside a frame or under a caption band, its band cuts, and each picture of a contact
        sheet or collage; what an upload is matched with besides its PDQ, for a platform that hashes itself
        to send as ``pdq_variants``."""
        from vigie.signals.pdq import DIHEDRAL_NAMES

        out = dict(zip(DIHEDRAL_NAMES[1:], (self.pdq_dihedral or [])[1:], strict=False))
        out.update(self.pdq_extra or {})
        return {k: v for k, v in out.items() if v != self.pdq}

    def to_json(self, variants: bool = False) -> dict[str, Any]:
        """The stable ``vigie hash --json`` record, one JSON object per item::

            {"path": str,                      # file path, or "outer.zip!dir/inner.jpg" for archive members
             "md5": hex32, "sha1": hex40, "sha256": hex64,   # null only when the bytes could not be read
             "pdq": hex64 | null, "pdq_quality": int 0-100 | null,   # images; quality < 50: do not match
             "error": "reason: message" | null,              # e.g. "truncated: ...", "zip_bomb: ..."
             "vpdq": [[seconds, hex64, quality], ...] | null,       # key present for video only
             "pdq_variants": {name: hex64, ...},    # with ``variants`` (``--variants``), images only;
                                                    # a video's frames then carry theirs as a 4th item
             "keypoints": {"views": [b64, ...], "spread": b64 | null, "cells": {name: b64},
                           "mirrored": {"views": [b64, ...], "spread": b64 | null},
                           "hints": [hex64, ...]}}   # with ``--keypoints``, images only

        Keys appear in this order; new keys may be added at the end, existing ones never change meaning.
        """
        out: dict[str, Any] = {
            "path": self.path,
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
            "pdq": self.pdq,
            "pdq_quality": self.pdq_quality,
            "error": self.error,
        }
        if self.vpdq is not None or is_video(self.media_type):
            out["vpdq"] = None if self.vpdq is None else [f.to_json(variants) for f in self.vpdq]
        elif variants and self.pdq is not None:
            out["pdq_variants"] = self.variants()
            if self.keypoints is not None:
                out["keypoints"] = self.keypoints
        return out


def hash_item(
    item: Item,
    limits: MediaLimits,
    vpdq_fps: float = 1.0,
    dihedral: bool = False,
    bank: bool = False,
    keypoints: bool = False,
) -> ItemSignals:
    """Hash one item; content problems land in ``error`` (e.g. ``truncated: …``), never as exceptions.

    ``dihedral`` hashes what matching a query needs (flips, rotations, framed pictures), ``bank`` what a
    bank entry of a video needs (its frames' views), ``keypoints`` (with ``dihedral``) an image's keypoint
    views and hints, for a hash-only item to be verified as an upload is."""
    md5, sha1, sha256 = crypto_hashes(item.data)
    sig = ItemSignals(path=item.path, media_type=item.media_type, md5=md5, sha1=sha1, sha256=sha256)
    try:
        if is_video(item.media_type):
            sig.vpdq = hash_video(item.data, limits, vpdq_fps, variants=dihedral, views=bank)
        else:
            item.decoded.setdefault(LIMITS, limits)  # analyzers open the item under the same
            try:
                im = open_image(item.data, limits)
            except MediaError as exc:  # what hashing refuses (a bomb, too large), no analyzer opens
                item.decoded[REFUSED] = exc.reason
                raise
            size = im.size  # before decoding: a reduced JPEG decode (draft) shrinks im.size
            with im, decode_errors():
                h, variants, px, gray = hash_image_pixels(im, dihedral=dihedral)
            if px is not None and px.ndim == 3 and (px.shape[1], px.shape[0]) == size:
                px.flags.writeable = False
                item.decoded["rgb"] = px  # the whole image: the watermark check needs just this
            sig.pdq, sig.pdq_quality, sig.pdq_dihedral = h.hex, h.quality, variants
            if dihedral and px is not None and gray is not None:  # for matching: the picture inside
                # a frame, the picture without its top or bottom band (captions and logos go there), and
                # each picture of a contact sheet or collage
                cuts, flat = band_hashes(gray, size, mirrored=True)
                sig.pdq_hints = flat or None
                extra = {**trimmed_hashes(px, size, gray, mirrored=True), **cuts, **cell_hashes(gray, size)}
                sig.pdq_extra = {k: v for k, v in extra.items() if v != h.hex} or None
                if keypoints:
                    from vigie.signals.views import PixelViews

                    sig.keypoints = {**PixelViews(item.data, limits).pack(), "hints": sig.pdq_hints or []}
            if sig.media_type is None:
                sig.media_type = f"image/{(im.format or 'unknown').lower()}"
    except MediaError as exc:
        sig.error = f"{exc.reason}: {exc}"
    return sig


def sent_signals(
    pdq: str | None, quality: int | None, variants: dict[str, str], hints: list[str] | None = None
) -> ItemSignals:
    """A hash-only image's signals laid out as hashing lays an upload's (flips and rotations apart from
    its other variants, in :data:`~vigie.signals.pdq.DIHEDRAL_NAMES` order, "" where not sent; ``hints``
    normalised, as :class:`~vigie.signals.views.SentViews` holds them), for the keypoint verifier to pick
    candidates as it does for an upload."""
    from vigie.signals.pdq import DIHEDRAL_NAMES

    flips = set(DIHEDRAL_NAMES)
    dihedral = [pdq or "", *(variants.get(n, "") for n in DIHEDRAL_NAMES[1:])]
    return ItemSignals(
        path="",
        pdq=pdq,
        pdq_quality=quality,
        pdq_dihedral=dihedral if any(dihedral[1:]) else None,
        pdq_extra={k: v for k, v in variants.items() if k not in flips} or None,
        pdq_hints=list(hints or ()) or None,
    )


def error_signals(err: ItemError) -> ItemSignals:
    return ItemSignals(path=err.path, error=f"{err.reason}: {err.message}")


def hash_path(
    path: Path, limits: MediaLimits, vpdq_fps: float = 1.0, dihedral: bool = False, keypoints: bool = False
) -> Iterator[ItemSignals]:
    """Signals of a file, or of each member when it is an archive; unreadable members get error records."""
    for obj in iter_file(path, limits):
        if isinstance(obj, Item):
            yield hash_item(obj, limits, vpdq_fps, dihedral, keypoints=keypoints)
        else:
            yield error_signals(obj)
