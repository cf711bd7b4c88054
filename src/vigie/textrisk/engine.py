"""Layered evidence → score, label and action: minor indicators × sexual indicators, softened by context.

The lexical stage decides clear cases in microseconds; texts it leaves in the ambiguous band go to the
semantic stage (``semantic.py``) when a sentence-embedding model is installed. Every score names the rules
and terms that produced it, because a score is triage for a human, never a verdict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from vigie.errors import VigieError
from vigie.textrisk.ages import find_ages
from vigie.textrisk.lang import detect_language
from vigie.textrisk.lexicon import Hit, Lexicon, default_lexicon
from vigie.textrisk.normalize import MAX_CHARS, canonical

KINDS = ("prompt", "negative_prompt", "caption", "tags", "comment", "model_tags")
LABELS = ("sexual_minors", "sexual_adult", "minor_nonsexual", "none")
_GENERATIVE = frozenset({"prompt", "negative_prompt", "tags", "model_tags"})
_MINOR_W = {"minor": 1.0, "csam": 1.0, "minor_weak": 0.5}
_SEXUAL_W = {"sexual": 1.0, "csam": 1.0, "sexual_med": 0.6, "sexual_weak": 0.25}


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above ``review`` go to a person; at or above ``block`` they are refused outright."""

    review: float = 0.5
    block: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.review <= self.block <= 1:
            raise VigieError(
                f"thresholds must satisfy 0 < review <= block <= 1, got {self.review}/{self.block}"
            )

    def action(self, score: float) -> str:
        return "block" if score >= self.block else "review" if score >= self.review else "allow"


@dataclass(frozen=True)
class Reason:
    """One rule that moved the score, with the terms that made it fire."""

    rule: str
    weight: float
    terms: tuple[str, ...] = ()

    def to_json(self, redact: bool = False) -> dict[str, Any]:
        terms = [_redact(t) for t in self.terms] if redact else list(self.terms)
        return {"rule": self.rule, "weight": round(self.weight, 3), "terms": terms}


def _redact(term: str) -> str:
    """A stable token that lets logs be correlated without writing the term itself."""
    return "term:" + hashlib.sha256(term.encode()).hexdigest()[:10]


@dataclass
class Assessment:
    """What textrisk says about one text; ``to_json(redact=True)`` is what may be logged."""

    score: float
    label: str
    action: str
    kind: str
    lang: str
    reasons: list[Reason] = field(default_factory=list)
    stage: str = "lexical"
    producer: str = ""
    truncated: bool = False

    def to_json(self, redact: bool = False) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "label": self.label,
            "action": self.action,
            "kind": self.kind,
            "lang": self.lang,
            "stage": self.stage,
            "producer": self.producer,
            "truncated": self.truncated,
            "reasons": [r.to_json(redact) for r in self.reasons],
        }


class SemanticStage(Protocol):
    """Decides texts the lexical stage left ambiguous (see :mod:`vigie.textrisk.semantic`)."""

    name: str

    def adjust(self, text: str, score: float) -> tuple[float, Reason]: ...


@dataclass
class _Evidence:
    minor: float = 0.0
    sexual: float = 0.0
    adult: bool = False
    frames: int = 0
    media: bool = False
    reasons: list[Reason] = field(default_factory=list)

    def note(self, rule: str, weight: float, terms: Iterable[str]) -> None:
        self.reasons.append(Reason(rule, weight, tuple(dict.fromkeys(terms))))


def _by_category(hits: list[Hit], lang: str) -> dict[str, list[str]]:
    """Hits grouped by category; a language-bound term counts when its language is detected or attested
    by another of its words, or when no language is attested at all (short tag lists defeat detection)."""
    attested = {h.term.lang for h in hits if not h.term.strict and h.term.lang != "*"}
    langs = {lang} | attested
    out: dict[str, list[str]] = {}
    for h in hits:
        # a bare tag list ("shota, nu") attests no language: the word then counts on its own
        if not h.term.strict or h.term.lang in langs or not attested:
            out.setdefault(h.term.category, []).append(h.term.text)
    return out


def _whole(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes in a command line or a file name, through Python's
    surrogateescape) as U+FFFD: the embedding stage encodes to UTF-8 and raised on them (found by fuzzing)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


class TextRisk:
    """The text-risk engine: ``assess`` one text, or many with ``assess_many``; shareable across threads."""

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        lexicon: Lexicon | None = None,
        semantic: SemanticStage | str | None = "auto",
        band: tuple[float, float] = (0.2, 0.8),
    ) -> None:
        self.thresholds = thresholds or Thresholds()
        self.lexicon = lexicon or default_lexicon()
        self._semantic = semantic
        self.band = band

    @property
    def semantic(self) -> SemanticStage | None:
        """The embedding stage, loaded on first use (about a second) so lexical-only callers never pay."""
        if self._semantic == "auto":
            from vigie.textrisk.semantic import load_default, semantic_available

            self._semantic = load_default() if semantic_available() else None
        return None if isinstance(self._semantic, str) else self._semantic

    @property
    def producer(self) -> str:
        """What made a score: the lexicon version and the embedding model when installed."""
        from vigie.textrisk.semantic import USEStage, semantic_available

        if self._semantic == "auto":
            stage = f" + {USEStage.name}" if semantic_available() else ""
        else:
            stage = (
                f" + {self._semantic.name}" if self._semantic and not isinstance(self._semantic, str) else ""
            )
        return f"vigie.textrisk lexicon {self.lexicon.version}{stage}"

    def assess(
        self, text: str, kind: str = "prompt", negative: str | None = None, lang: str | None = None
    ) -> Assessment:
        """Score ``text`` (of ``kind``) for sexualisation of minors; ``negative`` is the prompt's negative."""
        if kind not in KINDS:
            raise VigieError(f"unknown text kind {kind!r}: expected one of {', '.join(KINDS)}")
        if not isinstance(text, str):
            raise VigieError("text must be a string")
        text, negative = _whole(text), None if negative is None else _whole(negative)
        lang = lang or detect_language(text + " " + (negative or ""))
        ev = _Evidence()
        canon = canonical(text)
        cats = _by_category(self.lexicon.find(canon), lang)
        if kind == "negative_prompt":
            self._negative(cats, ev, alone=True)
        else:
            self._positive(canon, cats, ev)
            if negative:
                ncanon = canonical(negative)
                self._negative(_by_category(self.lexicon.find(ncanon), lang), ev, alone=False)
        score = self._score(ev, kind)
        stage = "lexical"
        if ev.minor > 0 and ev.sexual > 0 and self.band[0] <= score < self.band[1] and self.semantic:
            score, reason = self.semantic.adjust(text[:MAX_CHARS], score)
            ev.reasons.append(reason)
            stage = "semantic"
        label = self._label(score, ev)
        return Assessment(
            score=score,
            label=label,
            action=self.thresholds.action(score) if label == "sexual_minors" else "allow",
            kind=kind,
            lang=lang,
            reasons=ev.reasons,
            stage=stage,
            producer=self.producer,
            truncated=len(text) > MAX_CHARS,
        )

    def assess_many(self, items: Iterable[dict[str, Any]]) -> list[Assessment]:
        """Batch form: each item has ``text`` and optionally ``kind``, ``negative``, ``lang``."""
        return [
            self.assess(i["text"], i.get("kind") or "prompt", i.get("negative"), i.get("lang")) for i in items
        ]

    # ------------------------------------------------------------------------------------------ evidence
    def _positive(self, canon: str, cats: dict[str, list[str]], ev: _Evidence) -> None:
        for cat, w in _MINOR_W.items():
            if cats.get(cat) and w > ev.minor:
                ev.minor = w
        if len(set(cats.get("minor_weak", []))) >= 2 and ev.minor < 0.65:
            ev.minor = 0.65
        if ev.minor:
            ev.note(
                "minor_terms",
                ev.minor,
                [*cats.get("minor", []), *cats.get("csam", []), *cats.get("minor_weak", [])],
            )
        ages = find_ages(canon, self.lexicon)
        young = [a for a in ages if a.years < 18]
        if young:
            ev.minor = 1.0
            ev.note("age_under_18", 1.0, [a.text for a in young])
        if any(a.years >= 18 for a in ages) or cats.get("adult"):
            ev.adult = True
            ev.note(
                "adult_indicator", 0.0, [*cats.get("adult", []), *(a.text for a in ages if a.years >= 18)]
            )
            if ev.minor < 1.0:  # "schoolgirl costume for adult women": weak minor words yield to adult ones
                ev.minor *= 0.2
        for cat, w in _SEXUAL_W.items():
            if cats.get(cat) and w > ev.sexual:
                ev.sexual = w
        if len(set(cats.get("sexual_med", []))) >= 2 and ev.sexual < 0.8:
            ev.sexual = 0.8
        ev.media = bool(cats.get("media"))
        if ev.sexual == 0.6 and ev.media:
            ev.sexual = 0.85  # "sexual images": a sexual word naming a picture is explicit
        if ev.sexual:
            ev.note(
                "sexual_terms",
                ev.sexual,
                [
                    *cats.get("sexual", []),
                    *cats.get("csam", []),
                    *cats.get("sexual_med", []),
                    *cats.get("sexual_weak", []),
                ],
            )
        ev.frames = len(set(cats.get("frame", []))) + len(set(cats.get("topic", [])))
        if ev.frames:
            ev.note(
                "reporting_or_care_context",
                -float(ev.frames),
                [*cats.get("topic", []), *cats.get("frame", [])],
            )

    def _negative(self, cats: dict[str, list[str]], ev: _Evidence, alone: bool) -> None:
        """Read a negative prompt inverted: excluding adult features or clothes asks for their opposite."""
        protective = [*cats.get("minor", []), *cats.get("csam", []), *cats.get("minor_weak", [])]
        if protective:
            ev.note("negative_excludes_minors", 0.0, protective)
            if ev.minor < 1.0:
                ev.minor *= 0.3
            return
        push = cats.get("adult_push", [])
        undress = cats.get("clothing", [])
        if push and (alone or ev.sexual >= 0.6):
            ev.minor = max(ev.minor, 0.9 if not alone else 0.6)
            ev.note("negative_pushes_age_down", 0.9, push)
        if undress and (alone or ev.minor >= 0.5):
            ev.sexual = max(ev.sexual, 0.9 if not alone else 0.6)
            ev.note("negative_removes_clothing", 0.9, undress)
        if alone and push and undress:
            ev.minor, ev.sexual = 1.0, 0.9

    @staticmethod
    def _score(ev: _Evidence, kind: str) -> float:
        score = ev.minor * ev.sexual
        if ev.frames:
            factor = (
                max(0.8, 1 - 0.1 * ev.frames) if kind in _GENERATIVE else (0.45 if ev.frames == 1 else 0.3)
            )
            score *= factor
        return min(1.0, score)

    def _label(self, score: float, ev: _Evidence) -> str:
        if score >= self.thresholds.review and ev.minor and ev.sexual:
            return "sexual_minors"
        if ev.sexual >= 0.6:
            return (
                "sexual_adult" if ev.minor < 0.5 else "sexual_minors" if score >= 0.35 else "minor_nonsexual"
            )
        if ev.minor >= 0.5:
            return "minor_nonsexual"
        return "none"
