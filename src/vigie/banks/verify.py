"""The second stage: candidates in a wide PDQ band, promoted to matches only when their geometry verifies."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from vigie.media import decode_errors, open_image
from vigie.settings import MediaLimits
from vigie.signals import bands, features
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
    wide = [sig.pdq or "", *(v for k, v in extra.items() if k not in bands.NAMES)]
    found = dict(matcher.verify_candidates(wide, VERIFY_RADIUS, MAX_CANDIDATES))
    cuts = [*(v for k, v in extra.items() if k in bands.NAMES), *(sig.pdq_hints or ())]
    for eid, dist in matcher.verify_candidates(cuts, CUT_RADIUS, MAX_CANDIDATES) if cuts else ():
        found[eid] = min(dist, found.get(eid, dist))
    return sorted(found.items(), key=lambda c: (c[1], c[0]))[:MAX_CANDIDATES]


def verified_matches(
    matcher: Matcher, data: bytes, sig: ItemSignals, limits: MediaLimits
) -> list[dict[str, Any]]:
    """Match dicts (as the pipeline reports them) for candidates whose keypoints verify, with the evidence."""
    # A PDQ under quality 50 is never matched by distance (PDQ's rule), but it still says which entries
    # are worth a look: a match then rests on the keypoints' geometry alone. A flat image has no keypoints.
    if not features.available() or not sig.pdq or not sig.pdq_quality:
        return []
    cands = candidates(matcher, sig)
    if not cands:
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
    spread: list[features.Features] | None = None  # taken once, only if a candidate needs it
    rows = matcher.entries([eid for eid, _ in cands])
    banks = dict(matcher.banks)
    out: list[dict[str, Any]] = []
    for eid, dist in cands:
        e = rows.get(eid)
        b = banks.get(e.bank_id) if e is not None else None
        if e is None or b is None or not e.enabled or b.kind != "match":
            continue
        try:
            known = features.Features.unpack((e.extra or {})["features"])
        except (TypeError, ValueError, struct.error):  # written before imports checked it: skip, never fail
            continue
        evidence = _first_evidence(views, known)
        if evidence is None:
            if spread is None:
                more = features.extract_spread(small)
                spread = [more] if more is not None and len(more.points) else []
            evidence = _first_evidence(spread, known)
        if evidence is None:
            continue
        out.append(
            {
                "bank": b.name,
                "signal": "pdq",
                "distance": dist,
                "entry_id": str(eid),
                "labels": e.labels(),
                "bank_kind": b.kind,
                "transform": "verified",
                "verification": evidence,
            }
        )
    return out


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
    if box is not None:
        x0, y0, x1, y1 = box
        inner = features.extract(gray[y0:y1, x0:x1])
        if inner is not None and len(inner.points):
            # extract() works on a copy scaled down to SIDE: inner points -> box pixels -> whole-image
            # pixels -> the whole view's scaled coordinates
            k_box = min(1.0, features.SIDE / max(x1 - x0, y1 - y0))
            k_whole = min(1.0, features.SIDE / max(gray.shape[:2]))
            pts = (inner.points / k_box + np.array([x0, y0], dtype=np.float32)) * k_whole
            views.append(features.Features(pts.astype(np.float32), inner.descriptors))
    return views
