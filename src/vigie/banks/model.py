"""Plain data carried in and out of banks (no database objects leak past the bank store)."""

from __future__ import annotations

import binascii
import re
import struct
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

LABEL_FIELDS = ("source", "category", "ai_generated", "external_id", "note")
INTERNAL_EXTRA = frozenset({"features", "pdq_stable", "pdq_weak", "verify_hints"})
"""Keys of ``extra`` that are vigie's own search data and assessments: never labels, never exported."""
PRIVATE_EXTRA = frozenset({"RelativeFilePath", "file_name"})
"""Keys of ``extra`` naming where a file sat on a seized or listed drive (VICS paths, md5sum names): kept
for the bank's owner, never a label a match carries, exported only in VICS (whose own field the path is)."""


LABEL_MAX = {"source": 256, "category": 256, "external_id": 512}
"""Longest label values (characters) an entry may carry: its columns' sizes, which PostgreSQL enforces."""


def long_labels(e: EntryIn) -> str | None:
    """What is too long in an entry's labels, for its import's error list; None when all fit."""
    long = [
        f"{k} is {len(v)} characters, over {m}"
        for k, m in LABEL_MAX.items()
        if len(v := getattr(e, k) or "") > m
    ]
    return "; ".join(long) or None


def has_nul(value: Any) -> bool:
    """Whether text (or any string in a list or dict, keys included) holds U+0000, which PostgreSQL cannot
    store in a text or JSON column: refused on every backend, so both answer alike."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


def nul_labels(e: EntryIn) -> str | None:
    """Which of an entry's labels holds a NUL character, for its import's error list; None when none does."""
    bad = [k for k in ("source", "category", "external_id", "note", "extra") if has_nul(getattr(e, k))]
    return f"{', '.join(bad)} holds a NUL character (U+0000)" if bad else None


PDQ_HEX = re.compile(r"[0-9a-f]{64}")


def bad_search_data(e: EntryIn) -> str | None:
    """What is malformed in the search data an entry's ``extra`` carries (keypoints, hints, a weak PDQ's
    stable bits, the entry a derived one belongs to), for its import's error list; None when it is sound or
    absent.

    Only ``vigie bank add`` writes these, but a CSV column or an API body can carry the same keys, and one
    bad value read by the verifier would fail every upload that meets it."""
    from vigie.signals import stable
    from vigie.signals.features import Features

    extra = e.extra or {}
    bad: list[str] = []
    if "features" in extra:
        try:
            Features.unpack(extra["features"])
        except (TypeError, ValueError, struct.error, binascii.Error):
            bad.append("extra 'features' is not vigie's packed keypoints")
    hints = extra.get("verify_hints")
    if hints is not None and not (
        isinstance(hints, list) and all(isinstance(h, str) and PDQ_HEX.fullmatch(h) for h in hints)
    ):
        bad.append("extra 'verify_hints' is not a list of PDQ hex hashes")
    if "pdq_stable" in extra and not stable.valid_mask(extra["pdq_stable"]):
        bad.append(f"extra 'pdq_stable' is not a mask of {stable.STABLE_BITS} PDQ bits")
    for key in ("derived", "of"):
        if key in extra and not isinstance(extra[key], str):
            bad.append(f"extra '{key}' is not a string")
    return "; ".join(bad) or None


@dataclass
class EntryIn:
    """One entry to add: a signal and its labels; ``extra`` holds labels vigie has no column for."""

    signal_type: str
    value: str
    source: str | None = None
    category: str | None = None
    ai_generated: bool | None = None
    external_id: str | None = None
    note: str | None = None
    enabled: bool = True
    extra: dict[str, Any] | None = None


@dataclass
class EntryOut(EntryIn):
    id: int = 0
    bank_id: int = 0
    added_at: datetime | None = None

    def labels(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in LABEL_FIELDS}
        if self.extra:
            hidden = INTERNAL_EXTRA | PRIVATE_EXTRA
            out.update({k: v for k, v in self.extra.items() if k not in out and k not in hidden})
        return out


@dataclass(frozen=True)
class BankInfo:
    id: int
    name: str
    kind: str
    pdq_threshold: int
    pdq_min_quality: int
    description: str = ""
    entry_count: int = 0
    created_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d


@dataclass
class Match:
    """A signal of an item found in a bank: evidence for a reviewer, with where it came from."""

    bank: str
    bank_kind: str
    signal: str
    distance: int
    entry_id: str
    value: str
    labels: dict[str, Any] = field(default_factory=dict)
    transform: str | None = None
    """Set when the match came through a flipped/rotated variant of the item (e.g. ``mirror_lr``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "signal": self.signal,
            "distance": self.distance,
            "entry_id": self.entry_id,
            "labels": self.labels,
        }


@dataclass
class MatchResult:
    """Matches, and the matches an allow bank (known false positives) suppressed."""

    matches: list[Match] = field(default_factory=list)
    suppressed: list[Match] = field(default_factory=list)
    near: list[Match] = field(default_factory=list)
    """PDQ hits past their bank's threshold but within the ``near`` distance a caller asked for: never
    matches on their own, only evidence a caller weighs with more (video frames that agree in time)."""
