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
"""

from __future__ import annotations

import statistics
from collections import defaultdict
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


def video_matches(
    matcher: Matcher, frames: Sequence[FrameHash], rules: VideoRules | None = None
) -> list[Match]:
    """Known videos this video matches (whole or clip), closest first, each with its evidence."""
    rules = rules or VideoRules()
    q = distinct_frames(frames)
    if not q:
        return []
    results = matcher.match_many([{"pdq": f.pdq, "pdq_quality": f.quality} for f in q])
    # per known video: (query frame index, target time, distance) for every frame pair that matched
    pairs: dict[tuple[str, str], list[tuple[int, float, int]]] = defaultdict(list)
    info: dict[tuple[str, str], tuple[Match, int]] = {}
    for i, res in enumerate(results):
        for m in res.matches:
            labels = m.labels
            if labels.get("derived") != "frame":
                continue
            key = (m.bank, str(labels.get("of")))
            pairs[key].append((i, float(labels.get("t") or 0.0), m.distance))
            info.setdefault(key, (m, int(labels.get("frames") or 1)))
    out: list[Match] = []
    for key, ps in pairs.items():
        first, n_target = info[key]
        q_hit = {i for i, _, _ in ps}
        t_hit = {t for _, t, _ in ps}
        query_share = len(q_hit) / len(q)
        target_share = min(1.0, len(t_hit) / max(n_target, 1))
        offsets = [t - q[i].seconds for i, t, _ in ps]
        offset = statistics.median(offsets)
        agree = [
            (i, t)
            for (i, t, _), o in zip(ps, offsets, strict=True)
            if abs(o - offset) <= rules.offset_tolerance_s
        ]
        span = (max(q[i].seconds for i, _ in agree) - min(q[i].seconds for i, _ in agree)) if agree else 0.0
        consistent = len(agree) / len(ps) >= rules.min_consistent and span >= rules.min_matched_s
        if query_share >= rules.min_share and target_share >= rules.min_share:
            kind = "whole_video"
        elif query_share >= rules.min_share and consistent:
            kind = "clip_of_known_video"
        elif target_share >= rules.min_share and consistent:
            kind = "contains_known_video"
        elif span >= rules.min_segment_s and len(agree) >= 0.5 * span * _rate(q):
            kind = "shared_segment"
        else:
            continue
        labels = {k: v for k, v in first.labels.items() if k not in ("t", "frames", "derived")}
        labels["external_id"] = labels.get("of") or labels.get("external_id")
        evidence: dict[str, Any] = {
            "rule": kind,
            "query_share": round(query_share, 3),
            "target_share": round(target_share, 3),
            "matched_frames": len(q_hit),
            "offset_s": round(offset, 2),
            "matched_span_s": round(span, 1),
        }
        out.append(
            Match(
                bank=first.bank,
                bank_kind=first.bank_kind,
                signal="vpdq",
                distance=round(statistics.median(d for _, _, d in ps)),
                entry_id=first.entry_id,
                value=first.value,
                labels={**labels, "video_match": evidence},
                transform=kind,
            )
        )
    out.sort(key=lambda m: (-m.labels["video_match"]["query_share"], m.distance))
    return out
