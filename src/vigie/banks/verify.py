"""The second stage: candidates in a wide PDQ band, promoted to matches only when their geometry verifies."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from vigie.media import decode_errors, open_image
from vigie.settings import MediaLimits
from vigie.signals import bands, features, grid
from vigie.signals.borders import picture_boxes

if TYPE_CHECKING:
    from vigie.banks.matcher import Matcher
    from vigie.signals.item import ItemSignals

VERIFY_RADIUS = 90
"""PDQ distance within which a media entry is a candidate (a 4° tilt or a logo lands at 40–80 bits). On the
robustness benchmark's 110 originals, 11% of queries have an unrelated candidate within 90 bits and 66%
within 100: a wider band would verify nearly every upload against a media bank, for one more copy found."""
MAX_CANDIDATES = 8
"""Nearest media entries verified per query: tiles and crops of one photo sit near each other, so a
smaller number let siblings crowd the true entry out."""
CUT_RADIUS = 70
"""The same for a query's band cuts (``signals/bands.py``), nearer: see :func:`candidates`."""


def candidates(matcher: Matcher, sig: ItemSignals) -> list[tuple[int, int]]:
    """Media entries to verify for a query, nearest first: those within :data:`VERIFY_RADIUS` of its PDQ or
    of its frame trims, flips and rotations, and those within :data:`CUT_RADIUS` of its band cuts (flat ones
    included). A cut is a quarter less picture, and unrelated pictures' cuts lie nearer each other: at 90
    bits they gave 14% of unrelated uploads a candidate against 55 media entries, where 5.5% had one."""
    extra = sig.pdq_extra or {}
    # a grid's cells are matched by PDQ only: the sheet's keypoints, spread over all its cells, would
    # verify a sheet of 16 frames against whatever lies within 90 bits of any of them
    wide = [sig.pdq or "", *(v for k, v in extra.items() if k not in bands.NAMES and not grid.is_cell(k))]
    found = dict(matcher.verify_candidates(wide, VERIFY_RADIUS, MAX_CANDIDATES))
    cuts = [*(v for k, v in extra.items() if k in bands.NAMES), *(sig.pdq_hints or ())]
    for eid, dist in matcher.verify_candidates(cuts, CUT_RADIUS, MAX_CANDIDATES) if cuts else ():
        found[eid] = min(dist, found.get(eid, dist))
    return sorted(found.items(), key=lambda c: (c[1], c[0]))[:MAX_CANDIDATES]


def cell_candidates(matcher: Matcher, sig: ItemSignals) -> dict[str, list[tuple[int, int]]]:
    """Media entries to verify against each cell of a grid of pictures (``signals/grid.py``), by cell:
    those near its PDQ (:data:`VERIFY_RADIUS`) or its cuts (:data:`CUT_RADIUS`), nearest first. A
    sheet's timestamp moves a smooth frame's PDQ as far as a caption does."""
    per: dict[str, dict[str, list[str]]] = {}
    for name, value in (sig.pdq_extra or {}).items():
        if grid.is_cell(name):
            cell, _, cut = name.partition("_cut_")
            per.setdefault(cell, {"whole": [], "cuts": []})["cuts" if cut else "whole"].append(value)
    out: dict[str, list[tuple[int, int]]] = {}
    for cell, hexes in per.items():
        found: dict[int, int] = {}
        for group, radius in (("whole", VERIFY_RADIUS), ("cuts", CUT_RADIUS)):
            near = matcher.verify_candidates(hexes[group], radius, MAX_CANDIDATES) if hexes[group] else []
            for eid, dist in near:
                found[eid] = min(dist, found.get(eid, dist))
        if found:
            out[cell] = sorted(found.items(), key=lambda c: (c[1], c[0]))[:MAX_CANDIDATES]
    return out


def verified_matches(
    matcher: Matcher, data: bytes, sig: ItemSignals, limits: MediaLimits
) -> list[dict[str, Any]]:
    """Match dicts (as the pipeline reports them) for candidates whose keypoints verify, with the evidence:
    the whole image's and, for a grid of pictures, each cell's on its own (the evidence names the cell)."""
    # A PDQ under quality 50 is never matched by distance (PDQ's rule), but it still says which entries
    # are worth a look: a match then rests on the keypoints' geometry alone. A flat image has no keypoints.
    if not features.available() or not sig.pdq or not sig.pdq_quality:
        return []
    cands, per_cell = candidates(matcher, sig), cell_candidates(matcher, sig)
    if not cands and not per_cell:
        return []
    with open_image(data, limits) as im, decode_errors():
        im.draft("L", (1024, 1024))
        gray = im.convert("L")
    gray.thumbnail((1024, 1024))
    pixels = np.asarray(gray)
    small = features.scaled(pixels)
    views = _query_views(pixels, small)
    if not views:
        return []
    entries = matcher.entries({eid for eid, _ in cands} | {eid for c in per_cell.values() for eid, _ in c})
    banks = dict(matcher.banks)

    def known_features(eid: int) -> tuple[Any, Any, features.Features] | None:
        e = entries.get(eid)
        b = banks.get(e.bank_id) if e is not None else None
        if e is None or b is None or not e.enabled or b.kind != "match":
            return None
        try:
            return e, b, features.Features.unpack((e.extra or {})["features"])
        except (TypeError, ValueError, struct.error):  # written before imports checked it: skip, never fail
            return None

    def match(e: Any, b: Any, eid: int, dist: int, evidence: dict[str, Any]) -> dict[str, Any]:
        return {"bank": b.name, "signal": "pdq", "distance": dist, "entry_id": str(eid), "labels": e.labels(),
                "bank_kind": b.kind, "transform": "verified", "verification": evidence}  # fmt: skip

    spread: list[features.Features] | None = None  # taken once, only if a candidate needs it
    out: list[dict[str, Any]] = []
    for eid, dist in cands:
        if (known := known_features(eid)) is None:
            continue
        evidence = _first_evidence(views, known[2])
        if evidence is None:
            if spread is None:
                more = features.extract_spread(small)
                spread = [more] if more is not None and len(more.points) else []
            evidence = _first_evidence(spread, known[2])
        if evidence is not None:
            out.append(match(known[0], known[1], eid, dist, evidence))
    boxes = _cell_boxes(pixels) if per_cell else {}
    done = {m["entry_id"] for m in out}
    for cell, found in per_cell.items():
        # the cell's own coordinates: the evidence names the cell, and its scale and translation are the
        # cell's against the entry (mapped into the whole sheet, a 5×5 sheet's cell would be past SCALE_RANGE)
        x0, y0, x1, y1 = boxes.get(cell, (0, 0, 0, 0))
        view = features.extract(pixels[y0:y1, x0:x1]) if x1 > x0 and y1 > y0 else None
        if view is None or not len(view.points):
            continue
        for eid, dist in found:
            if str(eid) in done or (known := known_features(eid)) is None:
                continue
            if (evidence := features.verify(view, known[2])) is not None:
                out.append(match(known[0], known[1], eid, dist, {**evidence, "cell": cell}))
                done.add(str(eid))
    return out


def _cell_boxes(gray: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """The grid's cells in the verifier's decode, by the names their hashes have."""
    return {
        f"{grid.PREFIX}{r}_{c}": box
        for r, row in enumerate(grid.grid_cells(gray), 1)
        for c, box in enumerate(row, 1)
    }


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


def _first_evidence(views: list[features.Features], known: features.Features) -> dict[str, Any] | None:
    """The verification evidence of the first view that verifies against ``known``, if any."""
    return next((ev for q in views if (ev := features.verify(q, known)) is not None), None)


def _query_views(gray: np.ndarray, small: np.ndarray | None = None) -> list[features.Features]:
    """Features of the whole query, then of the picture inside its frame, under its caption band or inside
    its screenshot layout, if any.

    A photo shown small inside a page gets few of the whole image's keypoints; taken alone it gets them all.
    Points are mapped back to the whole view's coordinates, so the reported transform says where it sits.
    ``small``, if given, is ``gray`` already scaled for the whole view.
    """
    whole = features.extract(gray if small is None else small)  # extract() scales what it is given
    if whole is None:
        return []
    views = [whole]
    boxes = picture_boxes(gray)
    box = boxes.get("trim_caption") or boxes.get("trim_inner") or boxes.get("trim")
    if box is not None and (inner := _box_view(gray, box)) is not None:
        views.append(inner)
    return views
