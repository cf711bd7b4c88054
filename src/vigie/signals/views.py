"""The keypoint views a query is verified with: taken from its pixels, or as a platform that hashes itself
sent them (``vigie hash --json --keypoints``), so privacy mode can have the second stage too.

A query is looked at as its whole image, then as the picture inside its frame, caption band or page layout
(:meth:`QueryViews.looks`); when neither verifies a candidate, once more with keypoints spread over a grid
(:meth:`QueryViews.spread`); and each picture of a contact sheet or collage on its own
(:meth:`QueryViews.cell`). From pixels every view is taken only when first asked for, and the image is
decoded only then: an upload with no candidate pays nothing.

Sent views are ORB keypoints (coordinates and 32-byte descriptors, the same packing a bank entry keeps),
never pixels; but dense local descriptors with their positions allow a coarse reconstruction of a picture,
so sending them is the platform's choice (``--keypoints`` is off by default) and vigie never stores them.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Protocol

import numpy as np

from vigie.errors import SignalError
from vigie.media import decode_errors, open_image
from vigie.settings import MediaLimits
from vigie.signals import features, grid
from vigie.signals.borders import picture_boxes
from vigie.signals.types import signal_type

DECODE_SIDE = 1024
"""Long side of the grey decode keypoints are taken on (a cell of a sheet keeps enough pixels)."""
MAX_LOOKS = 2
MAX_SENT_CELLS = 64
MAX_SENT_HINTS = 32
CELL_NAME = re.compile(r"^cell_[1-8]_[1-8]$")
_MIRROR_FIELDS = frozenset({"views", "spread"})
_TOP_FIELDS = _MIRROR_FIELDS | {"cells", "hints", "mirrored"}


class QueryViews(Protocol):
    """What the verifier asks of a query (``vigie.banks.verify``)."""

    def looks(self) -> list[features.Features]:
        """The whole image's keypoints, then the framed picture's (in the whole view's coordinates)."""
        ...

    def spread(self) -> features.Features | None:
        """The second look: keypoints at the lowest threshold, spread over a grid."""
        ...

    def cell(self, name: str) -> features.Features | None:
        """Keypoints of one picture of a grid (``cell_<row>_<col>``), in the cell's own coordinates."""
        ...

    def mirrored(self) -> QueryViews | None:
        """The same looks of the query's left–right mirror (ORB is not mirror-invariant); no cells."""
        ...


class PixelViews:
    """Views of an image's bytes, each taken when first asked for (the decode too)."""

    def __init__(self, data: bytes, limits: MediaLimits, pixels: np.ndarray | None = None) -> None:
        self._data, self._limits = data, limits
        self._pixels: np.ndarray | None = pixels
        self._mirror: PixelViews | None = None
        self._small: np.ndarray | None = None
        self._looks: list[features.Features] | None = None
        self._spread: features.Features | None = None
        self._spread_done = False
        self._boxes: dict[str, tuple[int, int, int, int]] | None = None

    def pixels(self) -> np.ndarray:
        """The grey decode (long side at most DECODE_SIDE); MediaError if it does not decode."""
        if self._pixels is None:
            with open_image(self._data, self._limits) as im, decode_errors():
                im.draft("L", (DECODE_SIDE, DECODE_SIDE))
                gray = im.convert("L")
            gray.thumbnail((DECODE_SIDE, DECODE_SIDE))
            self._pixels = np.asarray(gray)
        return self._pixels

    def _scaled(self) -> np.ndarray:
        if self._small is None:
            self._small = features.scaled(self.pixels())
        return self._small

    def looks(self) -> list[features.Features]:
        if self._looks is None:
            self._looks = _looks(self.pixels(), self._scaled())
        return self._looks

    def spread(self) -> features.Features | None:
        if not self._spread_done:
            more = features.extract_spread(self._scaled())
            self._spread = more if more is not None and len(more.points) else None
            self._spread_done = True
        return self._spread

    def cells(self) -> dict[str, tuple[int, int, int, int]]:
        """The grid's cells in this decode, by the names their hashes have (empty: no grid)."""
        if self._boxes is None:
            self._boxes = {
                f"{grid.PREFIX}{r}_{c}": box
                for r, row in enumerate(grid.grid_cells(self.pixels()), 1)
                for c, box in enumerate(row, 1)
            }
        return self._boxes

    def cell(self, name: str) -> features.Features | None:
        box = self.cells().get(name)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        view = features.extract(self.pixels()[y0:y1, x0:x1])
        return view if view is not None and len(view.points) else None

    def mirrored(self) -> PixelViews:
        if self._mirror is None:
            self._mirror = PixelViews(b"", self._limits, np.ascontiguousarray(self.pixels()[:, ::-1]))
            self._mirror._boxes = {}  # a grid's cells are looked at unmirrored only
        return self._mirror

    def pack(self) -> dict[str, Any]:
        """Every view, packed as ``vigie hash --json --keypoints`` prints them (see :class:`SentViews`)."""
        cells = {name: v.pack() for name in self.cells() if (v := self.cell(name)) is not None}
        return {**self._pack_looks(), "cells": cells, "mirrored": self.mirrored()._pack_looks()}

    def _pack_looks(self) -> dict[str, Any]:
        spread = self.spread()
        return {"views": [v.pack() for v in self.looks()], "spread": spread.pack() if spread else None}


class SentViews:
    """Views a platform sent: ``{"views": [packed, ...], "spread": packed | null, "cells": {name: packed},
    "mirrored": {"views": [...], "spread": ...} | null, "hints": [hex64, ...]}`` (packed as
    :meth:`vigie.signals.features.Features.pack`), checked by :meth:`parse`. ``hints`` are the image's flat
    band cuts, normalised: not views, but they pick which entries the views are verified against."""

    def __init__(
        self,
        looks: list[features.Features],
        spread: features.Features | None = None,
        cells: dict[str, features.Features] | None = None,
        mirror: SentViews | None = None,
        hints: list[str] | None = None,
    ) -> None:
        self._looks, self._spread, self._cells, self._mirror = looks, spread, cells or {}, mirror
        self.hints = hints or []

    @classmethod
    def parse(cls, obj: dict[str, Any], where: str = "keypoints") -> SentViews:
        """SignalError naming what is wrong: an unknown key, a malformed packing, too many keypoints."""
        unknown = set(obj) - (_TOP_FIELDS if where == "keypoints" else _MIRROR_FIELDS)
        if unknown:
            raise SignalError(f"{where}: unknown field(s) {sorted(unknown)}")
        looks = obj.get("views") or []
        if not isinstance(looks, list) or not 1 <= len(looks) <= MAX_LOOKS:
            raise SignalError(f"{where}.views: a list of 1 to {MAX_LOOKS} packed views")
        cells = obj.get("cells") or {}
        if not isinstance(cells, dict) or len(cells) > MAX_SENT_CELLS:
            raise SignalError(f"keypoints.cells: at most {MAX_SENT_CELLS} cells by name")
        for name in cells:
            if not isinstance(name, str) or not CELL_NAME.match(name):
                raise SignalError(f"keypoints.cells: {str(name)[:40]!r} is not cell_<row>_<col>")
        spread, mirror = obj.get("spread"), obj.get("mirrored")
        if mirror is not None and not isinstance(mirror, dict):
            raise SignalError(f"{where}.mirrored: an object of views and spread")
        hints = obj.get("hints") or []
        if not isinstance(hints, list) or len(hints) > MAX_SENT_HINTS:
            raise SignalError(f"keypoints.hints: a list of at most {MAX_SENT_HINTS} PDQ hashes")
        return cls(
            [unpack(v, f"{where}.views[{k}]") for k, v in enumerate(looks)],
            unpack(spread, f"{where}.spread") if spread is not None else None,
            {name: unpack(v, f"{where}.cells.{name}") for name, v in cells.items()},
            cls.parse(mirror, f"{where}.mirrored") if mirror else None,
            [signal_type("pdq").normalize(h) for h in hints],  # SignalError names a bad one
        )

    def __len__(self) -> int:
        """Views sent with keypoints in them."""
        cells = sum(len(v.points) > 0 for v in self._cells.values())
        return len(self.looks()) + (self.spread() is not None) + cells + len(self._mirror or ())

    def looks(self) -> list[features.Features]:
        return [v for v in self._looks if len(v.points)]

    def spread(self) -> features.Features | None:
        return self._spread if self._spread is not None and len(self._spread.points) else None

    def cell(self, name: str) -> features.Features | None:
        view = self._cells.get(name)
        return view if view is not None and len(view.points) else None

    def mirrored(self) -> SentViews | None:
        return self._mirror


def unpack(text: Any, where: str) -> features.Features:
    """A packed view, checked whole: base64 of a count, that many float16 points on the SIDE-scaled image
    and as many 32-byte descriptors, nothing else."""
    if not isinstance(text, str):
        raise SignalError(f"{where}: a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignalError(f"{where}: not base64") from None
    if len(raw) < 2:
        raise SignalError(f"{where}: too short")
    n = int.from_bytes(raw[:2], "little")
    if n > features.QUERY_KEYPOINTS:
        raise SignalError(f"{where}: {n} keypoints, at most {features.QUERY_KEYPOINTS}")
    if len(raw) != 2 + 36 * n:
        raise SignalError(f"{where}: {len(raw)} bytes, {2 + 36 * n} for {n} keypoints")
    view = features.Features.unpack(text)
    pts = view.points
    if not np.isfinite(pts).all() or (pts < 0).any() or (pts > features.SIDE).any():
        raise SignalError(f"{where}: keypoints lie outside the {features.SIDE}-pixel view")
    return view


def _looks(gray: np.ndarray, small: np.ndarray) -> list[features.Features]:
    """Features of the whole query, then of the picture inside its frame, under its caption band or inside
    its screenshot layout, if any.

    A photo shown small inside a page gets few of the whole image's keypoints; taken alone it gets them all.
    Points are mapped back to the whole view's coordinates, so the reported transform says where it sits.
    """
    whole = features.extract(small)  # extract() scales what it is given: small already is
    if whole is None:
        return []
    views = [whole]
    boxes = picture_boxes(gray)
    box = boxes.get("trim_caption") or boxes.get("trim_inner") or boxes.get("trim")
    if box is not None and (inner := _box_view(gray, box)) is not None:
        views.append(inner)
    return views


def _box_view(gray: np.ndarray, box: tuple[int, int, int, int]) -> features.Features | None:
    """Features of the picture in ``box`` taken alone, its points in the whole view's coordinates (so the
    reported transform says where it sits); None when it has no keypoints.

    extract() works on a copy scaled down to SIDE: box points -> box pixels -> whole-image pixels -> the
    whole view's scaled coordinates."""
    x0, y0, x1, y1 = box
    inner = features.extract(gray[y0:y1, x0:x1])
    if inner is None or not len(inner.points):
        return None
    k_box = min(1.0, features.SIDE / max(x1 - x0, y1 - y0))
    k_whole = min(1.0, features.SIDE / max(gray.shape[:2]))
    pts = (inner.points / k_box + np.array([x0, y0], dtype=np.float32)) * k_whole
    return features.Features(pts.astype(np.float32), inner.descriptors)
