"""Bank entries from media files: cryptographic hashes, PDQ, and derived PDQs for crops, tilts and band cuts.

A re-upload cropped by a few percent, or turned by a few degrees, is far from the original's PDQ (Thorn
measured 9% recall at 99.99% precision for a 5% crop) and cannot be undone from the query side. When a bank
entry is made from the media itself, the standard crops and small rotations of it, and the picture without
its top or bottom band (where captions and logos go), are hashed too and stored as *derived* entries of the
same item (``extra = {"derived": "<transform>", "of": <external id>}``): the
matcher reports a hit on one as a match of the item, naming the transform; exports leave them out, since
they are vigie's own search aids rather than hashes anyone vouched for. Entries imported from hash lists
have no media, hence no derived signals.

An added file is named in its entries' ``external_id`` by its sha256 unless asked otherwise: the names and
folders of seized files can identify people or describe their content, and labels travel with every match a
platform is answered and every export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from vigie.banks.model import BankInfo, EntryIn
from vigie.banks.video import distinct_frames
from vigie.media import Item, decode_errors, open_image
from vigie.settings import MediaLimits
from vigie.signals import bands, features, hash_item, stable
from vigie.signals.borders import picture_boxes
from vigie.signals.grid import grid_cells
from vigie.signals.pdq import MIN_QUALITY, WEAK_SPREAD, hash_array

NameBy = Literal["sha256", "name", "path"]
"""What names an added file in its entries' ``external_id``: its content hash, its file name, or its path."""


def entry_name(path: str, sha256: str, name_by: NameBy = "sha256") -> str:
    """The ``external_id`` of a file's entries: ``sha256:<hex>``, the last part of its path (an archive
    member's own name), or the path as given."""
    if name_by == "path":
        return path
    if name_by == "name":
        return path.rsplit("!", 1)[-1].replace("\\", "/").rsplit("/", 1)[-1]
    return f"sha256:{sha256}"


def _crop(left: float, top: float, right: float, bottom: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.crop(
        (
            round(im.width * left),
            round(im.height * top),
            round(im.width * (1 - right)),
            round(im.height * (1 - bottom)),
        )
    )


def _rotate(deg: float, crop: bool = False) -> Callable[[Image.Image], Image.Image]:
    """A small tilt, corners filled black, or cropped to the largest centred box without them."""

    def f(im: Image.Image) -> Image.Image:
        out = im.rotate(deg, resample=Image.Resampling.BILINEAR, expand=False)
        if crop:
            t = abs(np.tan(np.radians(deg)))
            dx, dy = round(im.height * t / 2 + 2), round(im.width * t / 2 + 2)
            out = out.crop((dx, dy, im.width - dx, im.height - dy))
        return out

    return f


#: What a re-upload most often does that PDQ cannot see through: centred crops, crops from one corner,
#: small tilts (corners filled black, as an editor leaves them), and a caption or logo laid over the top
#: or bottom band, met by the picture without that band (a query hashes its own cuts, ``signals/bands.py``).
DERIVED: dict[str, Callable[[Image.Image], Image.Image]] = {
    "crop_c05": _crop(0.05, 0.05, 0.05, 0.05),
    "crop_c10": _crop(0.10, 0.10, 0.10, 0.10),
    "crop_c15": _crop(0.15, 0.15, 0.15, 0.15),
    "crop_tl10": _crop(0.10, 0.10, 0.0, 0.0),
    "crop_tr10": _crop(0.0, 0.10, 0.10, 0.0),
    "crop_bl10": _crop(0.10, 0.0, 0.0, 0.10),
    "crop_br10": _crop(0.0, 0.0, 0.10, 0.10),
    "rotate_+3": _rotate(3),
    "rotate_-3": _rotate(-3),
    "rotate_+3c": _rotate(3, crop=True),
    "rotate_-3c": _rotate(-3, crop=True),
    "cut_top": _crop(0.0, bands.CUT, 0.0, 0.0),
    "cut_bottom": _crop(0.0, 0.0, 0.0, bands.CUT),
}

#: A known image that is itself framed or captioned (material collected with a site's pad or banner, a
#: meme) is also kept as the picture inside, found as a query's is (``signals/borders.py``), so that a bare
#: re-post of the picture matches it. The layout search (``trim_inner``) is left out: on unframed photos
#: it finds plain parts often enough to be noise here, where a bank entry is forever.
OWN_PICTURE = {"trim": "picture_in_frame", "trim_strict": "picture_in_frame_strict",
               "trim_caption": "picture_under_caption"}  # fmt: skip

SHEET_CELL = "sheet_cell_"
"""A known contact sheet or collage also keeps each picture in it (``signals/grid.py``), named
``sheet_cell_<row>_<col>``, so that one frame or image of it posted alone matches the sheet."""


@dataclass
class MediaAids:
    """What a bank keeps from an image besides its own hashes, all from one decode."""

    derived: dict[str, str]  # transform name -> PDQ of that crop or tilt
    hints: list[str]  # PDQs of crops and tilts under quality 50: never matched, they only pick verifications
    features: str | None  # packed local features for the verifier (None without OpenCV)
    spread: float  # PDQ's DCT spread on the working copy (see vigie.signals.pdq.WEAK_SPREAD)
    stable: str  # its stable-bit mask, which verifies copies of a weak PDQ (vigie.signals.stable)


def media_aids(data: bytes, limits: MediaLimits) -> MediaAids:
    """Derived PDQs, packed local features and the PDQ spread of an image, from one decode."""
    with open_image(data, limits) as im, decode_errors():
        im.draft("RGB", (1024, 1024))  # a ~1 MP working copy is plenty for 64×64 PDQ and 512 px features
        base = im.convert("RGB")
    base.thumbnail((1024, 1024))
    out: dict[str, str] = {}
    hints: list[str] = []
    px = np.asarray(base)
    gray = np.asarray(base.convert("L"))
    own = [(OWN_PICTURE[k], box) for k, box in picture_boxes(px).items() if k in OWN_PICTURE]
    for r, row in enumerate(grid_cells(gray), 1):
        own.extend((f"{SHEET_CELL}{r}_{c}", box) for c, box in enumerate(row, 1))
    crops = chain(
        ((name, np.asarray(fn(base))) for name, fn in DERIVED.items()),  # one at a time: ~3 MB each
        ((name, np.ascontiguousarray(px[y0:y1, x0:x1])) for name, (x0, y0, x1, y1) in own),
    )
    for name, crop in crops:
        h = hash_array(crop)
        if h.quality >= MIN_QUALITY:
            out[name] = h.hex
        elif h.quality > 0:
            hints.append(h.hex)
    feats = features.extract(gray)
    packed = feats.pack() if feats is not None and len(feats.points) else None
    return MediaAids(out, hints if packed else [], packed, *stable.profile(px))


def entries_for_items(
    items: Iterable[Item],
    bank: BankInfo,
    limits: MediaLimits,
    labels: dict[str, Any],
    derived: bool = True,
    vpdq_fps: float = 1.0,
    name_by: NameBy = "sha256",
) -> Iterator[EntryIn | str]:
    """Entries for each item (crypto, PDQ, derived PDQ), or a message string for an item that was skipped.

    An ``external_id`` in ``labels`` names every item; otherwise ``name_by`` says how each is named."""
    for item in items:
        sig = hash_item(item, limits, vpdq_fps=vpdq_fps, bank=derived)
        if not sig.sha256:
            yield f"skipped {sig.path}: {sig.error}"
            continue
        own = {
            **labels,
            "external_id": labels.get("external_id") or entry_name(sig.path, sig.sha256, name_by),
        }
        for st in ("md5", "sha1", "sha256"):
            yield EntryIn(signal_type=st, value=getattr(sig, st), **own)
        if sig.vpdq is not None:  # a video: its distinct frames, for bag-of-frames matching
            frames = distinct_frames(sig.vpdq, bank.pdq_min_quality)
            if not frames:
                yield f"no frame entries for {sig.path}: no frame reaches quality {bank.pdq_min_quality}"
            for f in frames:
                frame_extra = {
                    "derived": "frame",
                    "of": own["external_id"],
                    "t": round(f.seconds, 3),
                    "frames": len(frames),
                }
                yield EntryIn(signal_type="pdq", value=f.pdq, **own, extra=frame_extra)
                for view, h in (f.views or {}).items():  # derived entries of the same frame
                    if h.quality >= bank.pdq_min_quality and h.hex != f.pdq:
                        yield EntryIn(
                            signal_type="pdq", value=h.hex, **own, extra={**frame_extra, "view": view}
                        )
            continue
        if not sig.pdq:
            continue
        if (sig.pdq_quality or 0) < bank.pdq_min_quality:
            yield f"no PDQ entry for {sig.path}: quality {sig.pdq_quality} too low"
            continue
        if not derived:
            yield EntryIn(signal_type="pdq", value=sig.pdq, **own)
            continue
        try:
            aids = media_aids(item.data, limits)
        except Exception as exc:  # the main entry stands; derived signals are an aid
            yield EntryIn(signal_type="pdq", value=sig.pdq, **own)
            yield f"no derived signals for {sig.path}: {exc}"
            continue
        extra: dict[str, Any] = {"features": aids.features} if aids.features else {}
        if aids.hints:
            extra["verify_hints"] = aids.hints
        if aids.spread < WEAK_SPREAD:
            extra["pdq_weak"] = round(aids.spread, 2)
            extra["pdq_stable"] = aids.stable
            yield (
                f"weak PDQ for {sig.path}: quality {sig.pdq_quality}, but its low frequencies are nearly "
                f"flat (DCT spread {aids.spread:.2f} < {WEAK_SPREAD}): re-encoded and resized copies are "
                f"verified on its {stable.STABLE_BITS} stable bits, cropped or tilted ones may be missed; "
                "exact copies still match by md5/sha1/sha256"
            )
        yield EntryIn(signal_type="pdq", value=sig.pdq, **own, extra=extra or None)
        for name, value in aids.derived.items():
            if value != sig.pdq:
                yield EntryIn(
                    signal_type="pdq", value=value, **own, extra={"derived": name, "of": own["external_id"]}
                )


def entries_for_paths(
    paths: Iterable[Path],
    bank: BankInfo,
    limits: MediaLimits,
    labels: dict[str, Any],
    derived: bool = True,
    vpdq_fps: float = 1.0,
    name_by: NameBy = "sha256",
) -> Iterator[EntryIn | str]:
    """:func:`entries_for_items` over files, folders and archives (archive members included)."""
    from vigie.media import iter_file, list_inputs

    for path in list_inputs(list(paths)):
        for got in iter_file(path, limits):
            if isinstance(got, Item):
                yield from entries_for_items([got], bank, limits, labels, derived, vpdq_fps, name_by)
            else:
                yield f"skipped {got.path}: {got.reason}: {got.message}"
