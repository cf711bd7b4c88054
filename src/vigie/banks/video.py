"""Video matching as a bag of frames (vPDQ): whole videos, a clip of a known video, or a known clip inside.

A known video is stored as its sampled frames' PDQs, each a *derived* bank entry of the video
(``extra = {"derived": "frame", "of": <external id>, "t": seconds, "frames": n}``), so frames live in the
same index, change log and allow-bank logic as everything else, and an image that is a frame of a known
video matches it. A query video's frames are searched in one batch; per known video, as in Meta's vPDQ:

- ``query_share``: the share of the query's (quality-filtered, de-duplicated) frames that match a frame of it;
- ``target_share``: the share of its frames matched by some query frame;
- whole-video match when both reach ``min_share``; clip match when one does (the query is a clip of it, or
  holds it) *and* the matched frame pairs agree on one time offset (``offset_tolerance_s``) over at least
  ``min_matched_s`` seconds, so scattered look-alike frames do not add up to a match;
- shared segment when neither share is reached but at least ``min_segment_s`` seconds match at one time
  offset, densely (part of a known video inside unrelated footage).

A query frame also matches through its variants (mirrored, turned, the picture inside bars) and a known
frame through its views (zoomed, cropped to fill; see :mod:`vigie.signals.vpdq`). Frame pairs past the
bank's threshold but within ``near_bits`` count only toward a match whose pairs line up in time (then the
whole-video rule needs that too).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vigie.banks.model import Match
from vigie.signals.vpdq import FrameHash

if TYPE_CHECKING:
    from vigie.banks.matcher import Matcher

MIN_QUALITY = 50


@dataclass(frozen=True)
class VideoRules:
    min_share: float = 0.8
    offset_tolerance_s: float = 2.0
    min_matched_s: float = 5.0
    min_consistent: float = 0.6
    """Share of matched frame pairs that must agree on the dominant time offset for a clip match."""
    min_segment_s: float = 10.0
    """A time-aligned run this long matches on its own (a known clip inside unrelated footage)."""
    near_bits: int = 64
    """Frame pairs past the bank's threshold but within this many bits count toward a match only when
    they agree in time: a logo or a caption moves a frame's PDQ 20–80 bits from the known frame, while no
    frame of another video came nearer than 84 bits in the benchmark (``bench/bench_video.py``)."""


def distinct_frames(frames: Sequence[FrameHash], min_quality: int = MIN_QUALITY) -> list[FrameHash]:
    """Frames worth matching: quality at least ``min_quality``, consecutive duplicates dropped."""
    out: list[FrameHash] = []
    for f in frames:
        if f.quality >= min_quality and (not out or out[-1].pdq != f.pdq):
            out.append(f)
    return out


def _rate(frames: Sequence[FrameHash]) -> float:
    """Sampled frames per second of a frame list (1.0 when it cannot be told)."""
    if len(frames) < 2 or frames[-1].seconds <= frames[0].seconds:
        return 1.0
    return (len(frames) - 1) / (frames[-1].seconds - frames[0].seconds)


Pair = tuple[int, float, int, str | None]
"""A query frame matched to a known frame: (query frame index, known frame's time, distance, variant)."""


def _verdict(
    ps: Sequence[Pair], q: Sequence[FrameHash], n_target: int, rules: VideoRules, aligned: bool
) -> tuple[str, dict[str, Any]] | None:
    """Which rule, if any, these frame pairs meet, with their evidence; ``aligned`` asks time alignment
    of every rule (the whole-video rule too), as frame pairs from the wider ``near_bits`` band need."""
    q_hit = {p[0] for p in ps}
    t_hit = {p[1] for p in ps}
    query_share = len(q_hit) / len(q)
    target_share = min(1.0, len(t_hit) / max(n_target, 1))
    offsets = [t - q[i].seconds for i, t, _, _ in ps]
    offset = statistics.median(offsets)
    agree = [p for p, o in zip(ps, offsets, strict=True) if abs(o - offset) <= rules.offset_tolerance_s]
    span = (max(q[p[0]].seconds for p in agree) - min(q[p[0]].seconds for p in agree)) if agree else 0.0
    consistent = len(agree) / len(ps) >= rules.min_consistent and span >= rules.min_matched_s
    if query_share >= rules.min_share and target_share >= rules.min_share and (consistent or not aligned):
        kind = "whole_video"
    elif query_share >= rules.min_share and consistent:
        kind = "clip_of_known_video"
    elif target_share >= rules.min_share and consistent:
        kind = "contains_known_video"
    elif span >= rules.min_segment_s and len(agree) >= 0.5 * span * _rate(q):
        kind = "shared_segment"
    else:
        return None
    evidence: dict[str, Any] = {
        "rule": kind,
        "query_share": round(query_share, 3),
        "target_share": round(target_share, 3),
        "matched_frames": len(q_hit),
        "offset_s": round(offset, 2),
        "matched_span_s": round(span, 1),
    }
    via = Counter(p[3] for p in ps if p[3])
    if via:  # e.g. {"mirror_lr": 18}: the copy is mirrored, or set inside bars ("trim")
        evidence["frame_variants"] = dict(via.most_common())
    return kind, evidence


def _frame_pair(i: int, m: Match) -> Pair:
    """``variant`` names the query frame's variant and the bank frame's view that met, when not plain."""
    ours = m.transform.removesuffix("+frame") if m.transform and m.transform != "frame" else None
    variant = "+".join(v for v in (ours, m.labels.get("view")) if v) or None
    return i, float(m.labels.get("t") or 0.0), m.distance, variant


def video_matches(
    matcher: Matcher, frames: Sequence[FrameHash], rules: VideoRules | None = None
) -> list[Match]:
    """Known videos this video matches (whole or clip), closest first, each with its evidence."""
    rules = rules or VideoRules()
    q = distinct_frames(frames)
    if not q:
        return []
    results = matcher.match_many(
        [{"pdq": f.pdq, "pdq_quality": f.quality, "pdq_variants": f.variants} for f in q],
        near=rules.near_bits,
    )
    # per known video: the frame pairs within its bank's threshold, and those only within near_bits
    pairs: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    near: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    info: dict[tuple[str, str], tuple[Match, int]] = {}
    for i, res in enumerate(results):
        for into, found in ((pairs, res.matches), (near, res.near)):
            for m in found:
                if m.labels.get("derived") != "frame":
                    continue
                key = (m.bank, str(m.labels.get("of")))
                into[key].append(_frame_pair(i, m))
                info.setdefault(key, (m, int(m.labels.get("frames") or 1)))
    out: list[Match] = []
    for key in info:
        first, n_target = info[key]
        ps = pairs.get(key, [])
        verdict = _verdict(ps, q, n_target, rules, aligned=False) if ps else None
        if verdict is None and near.get(key):
            strong = {p[0] for p in ps}
            ps = ps + [p for p in near[key] if p[0] not in strong]
            verdict = _verdict(ps, q, n_target, rules, aligned=True)
            if verdict is not None:
                verdict[1]["near_frames"] = len(ps) - len(strong)
        if verdict is None:
            continue
        kind, evidence = verdict
        labels = {k: v for k, v in first.labels.items() if k not in ("t", "frames", "derived", "view")}
        labels["external_id"] = labels.get("of") or labels.get("external_id")
        out.append(
            Match(
                bank=first.bank,
                bank_kind=first.bank_kind,
                signal="vpdq",
                distance=round(statistics.median(p[2] for p in ps)),
                entry_id=first.entry_id,
                value=first.value,
                labels={**labels, "video_match": evidence},
                transform=kind,
            )
        )
    out.sort(key=lambda m: (-m.labels["video_match"]["query_share"], m.distance))
    return out
