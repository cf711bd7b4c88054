"""The second stage: candidates in a wide PDQ band, promoted to matches only when their geometry verifies
(keypoints) or, for an entry the bank reports as a weak PDQ, when the query keeps its stable bits."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from vigie.signals import bands, features, grid, stable
from vigie.signals.pdq import DIHEDRAL_NAMES, MIRROR, distance

if TYPE_CHECKING:
    from vigie.banks.matcher import Matcher
    from vigie.signals.item import ItemSignals
    from vigie.signals.views import QueryViews

VERIFY_RADIUS = 90
"""PDQ distance within which a media entry is a candidate (a 4° tilt or a logo lands at 40–80 bits). On the
robustness benchmark's 110 originals, 11% of queries have an unrelated candidate within 90 bits and 66%
within 100: a wider band would verify nearly every upload against a media bank, for one more copy found."""
MAX_CANDIDATES = 8
"""Nearest media entries verified per query: tiles and crops of one photo sit near each other, so a
smaller number let siblings crowd the true entry out."""
CUT_RADIUS = 70
"""The same for a query's band cuts (``signals/bands.py``), nearer: see :func:`candidates`."""
MIRROR_RADIUS = 70
"""The same for a query's mirror and the mirrors of its trims and cuts (:func:`mirror_candidates`): at 90
bits they gave a second of the service benchmark's 10 unrelated uploads a candidate among 1,000 media
entries (25 ms of verification); on the robustness benchmark's mirrored-and-tilted copies, the true entry
is within 70 bits for 93 of the 96 found within 90."""


def candidates(matcher: Matcher, sig: ItemSignals) -> list[tuple[int, int]]:
    """Media entries to verify for a query, nearest first: those within :data:`VERIFY_RADIUS` of its PDQ or
    of its frame trims, flips and rotations, and those within :data:`CUT_RADIUS` of its band cuts (flat ones
    included). A cut is a quarter less picture, and unrelated pictures' cuts lie nearer each other: at 90
    bits they gave 14% of unrelated uploads a candidate against 55 media entries, where 5.5% had one."""
    extra = {k: v for k, v in (sig.pdq_extra or {}).items() if not k.endswith(MIRROR)}
    # a grid's cells are matched by PDQ only: the sheet's keypoints, spread over all its cells, would
    # verify a sheet of 16 frames against whatever lies within 90 bits of any of them
    wide = [sig.pdq or "", *(v for k, v in extra.items() if not bands.is_cut(k) and not grid.is_cell(k))]
    cuts = [*(v for k, v in extra.items() if bands.is_cut(k)), *(sig.pdq_hints or ())]
    return _near(matcher, wide, cuts)


def mirror_candidates(matcher: Matcher, sig: ItemSignals) -> list[tuple[int, int]]:
    """Media entries to verify against the query's left–right mirror (ORB keypoints are not mirror-
    invariant, so a mirrored copy is verified on its mirror's): those within :data:`MIRROR_RADIUS` of its
    mirror's PDQ or of the mirrors of its frame trims and band cuts."""
    flip = (sig.pdq_dihedral or [])[1:2]  # mirror_lr, second in DIHEDRAL_NAMES
    mirrored = [*flip, *(v for k, v in (sig.pdq_extra or {}).items() if k.endswith(MIRROR))]
    if not (mirrored := [h for h in mirrored if h]):
        return []
    return _nearest(dict(matcher.verify_candidates(mirrored, MIRROR_RADIUS, MAX_CANDIDATES)))


def _near(matcher: Matcher, wide: list[str], cuts: list[str]) -> list[tuple[int, int]]:
    """Entries within VERIFY_RADIUS of a ``wide`` hash or CUT_RADIUS of a ``cuts`` one, nearest first."""
    found = dict(matcher.verify_candidates(wide, VERIFY_RADIUS, MAX_CANDIDATES)) if wide else {}
    for eid, dist in matcher.verify_candidates(cuts, CUT_RADIUS, MAX_CANDIDATES) if cuts else ():
        found[eid] = min(dist, found.get(eid, dist))
    return _nearest(found)


def _nearest(found: dict[int, int]) -> list[tuple[int, int]]:
    """The MAX_CANDIDATES nearest of (entry id: distance), nearest first, lower id on a tie."""
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
        if near := _near(matcher, hexes["whole"], hexes["cuts"]):
            out[cell] = near
    return out


def verified_matches(matcher: Matcher, sig: ItemSignals, views: QueryViews | None) -> list[dict[str, Any]]:
    """Match dicts (as the pipeline reports them) for candidates that verify, with the evidence: a weak
    entry's stable bits (from the query's hashes alone), then keypoints, on the whole image and, for a grid
    of pictures, on each cell (the evidence names the cell).

    ``views`` are the query's keypoints: taken from its pixels (:class:`~vigie.signals.views.PixelViews`,
    only once a candidate needs them), as a platform sent them, or None (a hash-only item without them)."""
    # A PDQ under quality 50 is never matched by distance (PDQ's rule), but it still says which entries
    # are worth a look: a match then rests on the keypoints' geometry alone. A flat image has no keypoints.
    if not sig.pdq or sig.pdq_quality == 0:  # flat: nothing to verify (a quality not sent is no reason)
        return []
    if (views is None or not features.available()) and not matcher.verifiable.any_weak():
        return []  # no keypoints to verify, and no stable bits either: spare the candidate search
    cands, per_cell = candidates(matcher, sig), cell_candidates(matcher, sig)
    plain = {eid for eid, _ in cands}
    flipped = [c for c in mirror_candidates(matcher, sig) if c[0] not in plain]
    if not cands and not per_cell and not flipped:
        return []
    wanted = plain | {eid for eid, _ in flipped} | {eid for c in per_cell.values() for eid, _ in c}
    entries = matcher.entries(wanted)
    banks = dict(matcher.banks)

    def known(eid: int) -> tuple[Any, Any] | None:
        e = entries.get(eid)
        b = banks.get(e.bank_id) if e is not None else None
        if e is None or b is None or not e.enabled or b.kind != "match":
            return None
        return e, b

    def match(e: Any, b: Any, eid: int, dist: int, evidence: dict[str, Any]) -> dict[str, Any]:
        return {"bank": b.name, "signal": "pdq", "distance": dist, "entry_id": str(eid), "labels": e.labels(),
                "bank_kind": b.kind, "transform": "verified", "verification": evidence}  # fmt: skip

    out: list[dict[str, Any]] = []
    done: set[int] = set()
    if matcher.verifiable.any_weak():  # a weak entry's stable bits first: no pixels, no keypoints needed
        whole_hashes = _whole_hashes(sig)
        for eid in dict.fromkeys([*(c[0] for c in cands), *(c[0] for c in flipped),
                                  *(eid for c in per_cell.values() for eid, _ in c)]):  # fmt: skip
            if (got := known(eid)) is None or (sig.pdq_quality or 100) < got[1].pdq_min_quality:
                continue  # stable bits are PDQ bits: under the bank's quality floor, only keypoints match
            if (kept := _stable_evidence(got[0], whole_hashes)) is not None:
                out.append(match(*got, eid, *kept))
                done.add(eid)
    if views is None or not features.available():
        return out

    def known_features(eid: int) -> tuple[Any, Any, features.Features] | None:
        if eid in done or (got := known(eid)) is None:
            return None
        try:
            return *got, features.Features.unpack((got[0].extra or {})["features"])
        except (TypeError, ValueError, KeyError, struct.error):  # a weak entry has none; written before
            return None  # imports checked it: skip, never fail

    def whole(found: list[tuple[int, int]], seen: QueryViews, note: dict[str, Any]) -> None:
        """Verify candidates on the whole query (or its mirror): its looks, then its spread look."""
        for eid, dist in found:
            if (known_ := known_features(eid)) is None:
                continue
            evidence = _first_evidence(seen.looks(), known_[2])
            if evidence is None and (spread := seen.spread()) is not None:  # taken once, only if needed
                evidence = features.verify(spread, known_[2])
            if evidence is not None:
                out.append(match(known_[0], known_[1], eid, dist, {**evidence, **note}))
                done.add(eid)

    whole(cands, views, {})
    if flipped and (mirror := views.mirrored()) is not None:
        # the evidence's transform maps the query's mirror image onto the entry
        whole(flipped, mirror, {"mirrored": True})
    for cell, found in per_cell.items():
        # the cell's own coordinates: the evidence names the cell, and its scale and translation are the
        # cell's against the entry (mapped into the whole sheet, a 5×5 sheet's cell would be past SCALE_RANGE)
        if (view := views.cell(cell)) is None:
            continue
        for eid, dist in found:
            if (known_ := known_features(eid)) is None:
                continue
            if (evidence := features.verify(view, known_[2])) is not None:
                out.append(match(known_[0], known_[1], eid, dist, {**evidence, "cell": cell}))
                done.add(eid)
    return out


def _whole_hashes(sig: ItemSignals) -> dict[str, str]:
    """The query's hashes of a whole picture as it stands, by name: its PDQ, trims and the cells of a grid.
    Not band cuts (of the image or of a cell), which hold a quarter less of it, nor flips and rotations:
    a weak entry's stable bits are mostly its layout (a vignette: bright middle, dark edges), which a
    framed sheet of a flat picture turned on its diagonal met within 9 bits on the robustness benchmark."""
    return {name: h for name, h in {"pdq": sig.pdq or "", **sig.variants()}.items()
            if h and name not in DIHEDRAL_NAMES and not name.endswith(MIRROR)
            and not bands.is_cut(name) and "_cut_" not in name}  # fmt: skip


def _stable_evidence(entry: Any, hashes: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
    """(distance, evidence) when one of the query's ``hashes`` lies within VERIFY_RADIUS of a weak entry's
    PDQ and differs on at most MAX_DIFFERING of its stable bits (``signals/stable.py``): the one that
    differs on fewest, nearer on a tie."""
    mask = (entry.extra or {}).get("pdq_stable")
    if entry.signal_type != "pdq" or not stable.valid_mask(mask):  # imports refuse a bad one; never fail
        return None
    near = [(stable.differing(h, entry.value, mask), distance(h, entry.value), name)
            for name, h in hashes.items()]  # fmt: skip
    kept, dist, name = min(((k, d, n) for k, d, n in near if d <= VERIFY_RADIUS), default=(256, 256, ""))
    if kept > stable.MAX_DIFFERING:
        return None
    evidence: dict[str, Any] = {
        "method": "PDQ stable bits", "stable_bits": stable.STABLE_BITS, "differing": kept, "view": name,
        "entry_dct_spread": (entry.extra or {}).get("pdq_weak"),  # how little the entry's PDQ says
    }  # fmt: skip
    if grid.is_cell(name):
        evidence["cell"] = name
    return dist, evidence


def _first_evidence(views: list[features.Features], known: features.Features) -> dict[str, Any] | None:
    """The verification evidence of the first view that verifies against ``known``, if any."""
    return next((ev for q in views if (ev := features.verify(q, known)) is not None), None)
