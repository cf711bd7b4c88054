"""The flow for one item: signals → matches → findings, as one JSON-ready result. No I/O of its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vigie.analyzers import ai_evidence_summary, analyze_item
from vigie.analyzers.base import Analyzer
from vigie.media.item import Item, ItemError
from vigie.settings import MediaLimits

if TYPE_CHECKING:
    from vigie.banks.matcher import Matcher
    from vigie.banks.model import Match
    from vigie.signals.item import ItemSignals
    from vigie.signals.views import QueryViews


@dataclass
class ItemResult:
    """Everything vigie learned about one item; ``to_json`` is what scan reports and the API carry."""

    path: str
    media_type: str | None = None
    size: int | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    vpdq: list[list[Any]] | None = None
    matches: list[dict[str, Any]] = field(default_factory=list)
    suppressed: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    ai_evidence: str | None = None
    error: str | None = None
    thumbnail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not (k == "thumbnail" and v is None)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class PipelineContext:
    """What processing an item needs: limits, an optional matcher and the analyzers to run."""

    limits: MediaLimits = field(default_factory=MediaLimits)
    matcher: Matcher | None = None
    analyzers: Sequence[Analyzer] = ()
    vpdq_fps: float = 1.0
    dihedral: bool = True
    """Also match flipped and 90°-rotated copies (PDQ's 8 dihedral variants, derived without rehashing)."""


def error_result(err: ItemError) -> ItemResult:
    """An unreadable file still gets a row in every report, with its reason."""
    return ItemResult(path=err.path, error=f"{err.reason}: {err.message}")


def match_record(m: Match) -> dict[str, Any]:
    """A match as results, recorded items and answers carry it: with its bank's kind, and the transform
    (flip, derived crop, video rule) through which it was found, so a reviewer sees what produced it."""
    out = {**m.to_json(), "bank_kind": m.bank_kind}
    if m.transform:
        out["transform"] = m.transform
    return out


def _match_dicts(matcher: Matcher, sig: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    variants = sig.variants()
    res = matcher.match(
        md5=sig.md5,
        sha1=sig.sha1,
        sha256=sig.sha256,
        pdq=sig.pdq,
        pdq_quality=sig.pdq_quality,
        pdq_variants=variants or None,
    )

    return [match_record(m) for m in res.matches], [match_record(m) for m in res.suppressed]


def verified_match_dicts(
    matcher: Matcher, sig: ItemSignals, views: QueryViews | None, found: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Matches the second stage verifies (``vigie.banks.verify``: keypoints, or a weak entry's stable bits)
    for an image its PDQ signals did not match (``found``: what they matched or an allow bank suppressed),
    for uploads and hash-only items alike; ``views`` None for a hash-only item sent without keypoints."""
    if not sig.pdq or any(m["signal"] == "pdq" for m in found):
        return []
    from vigie.banks.verify import verified_matches

    return verified_matches(matcher, sig, views)


def video_match_dicts(matcher: Matcher, frames: Sequence[Any]) -> list[dict[str, Any]]:
    """Known videos that a video's frames (:class:`~vigie.signals.vpdq.FrameHash`) match, as results carry
    them; for uploads and for frames a platform sent alone."""
    from vigie.banks.video import video_matches

    return [match_record(m) for m in video_matches(matcher, frames)]


def process_item(item: Item, ctx: PipelineContext) -> ItemResult:
    """Hash, match and analyse one item; bad content becomes ``error``, never an exception."""
    from vigie.signals import hash_item

    sig = hash_item(
        item, ctx.limits, vpdq_fps=ctx.vpdq_fps, dihedral=ctx.dihedral and ctx.matcher is not None
    )
    out = ItemResult(
        path=item.path,
        media_type=sig.media_type or item.media_type,
        size=item.size,
        md5=sig.md5,
        sha1=sig.sha1,
        sha256=sig.sha256,
        pdq=sig.pdq,
        pdq_quality=sig.pdq_quality,
        vpdq=sig.to_json().get("vpdq"),
        error=sig.error,
    )
    if ctx.matcher is not None:
        from vigie.signals.views import PixelViews

        out.matches, out.suppressed = _match_dicts(ctx.matcher, sig)
        out.matches += verified_match_dicts(
            ctx.matcher, sig, PixelViews(item.data, ctx.limits), out.matches + out.suppressed
        )
        if sig.vpdq:
            out.matches += video_match_dicts(ctx.matcher, sig.vpdq)
    if ctx.analyzers:
        findings = analyze_item(item, ctx.analyzers)
        out.findings = [f.to_dict() for f in findings]
        out.ai_evidence = ai_evidence_summary(findings)
    return out
