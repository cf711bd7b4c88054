"""The generation guard: one decision (allow, review, block) with reasons, for a prompt or an image."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vigie.errors import VigieError
from vigie.textrisk import Assessment, TextRisk, Thresholds

if TYPE_CHECKING:
    from vigie.analyzers.base import Analyzer
    from vigie.banks.matcher import Matcher
    from vigie.settings import MediaLimits

_ORDER = {"allow": 0, "review": 1, "block": 2}


@dataclass
class GuardDecision:
    """What the guard decided and why; ``reasons`` name the producer of each signal and how sure it is."""

    action: str
    score: float
    label: str
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.action == "allow"

    def to_json(self, redact: bool = False) -> dict[str, Any]:
        reasons = self.reasons
        if redact:
            reasons = [{k: v for k, v in r.items() if k not in ("terms", "text")} for r in reasons]
        return {"action": self.action, "score": round(self.score, 4), "label": self.label, "reasons": reasons}


def _worst(*actions: str) -> str:
    return max(actions, key=_ORDER.__getitem__)


class Guard:
    """Screens prompts before generation and images after; built from textrisk, banks and analyzers.

    ``matcher`` (optional) blocks outputs that match a known-material bank; ``analyzers`` default to none
    for outputs, since a generated image carries generator evidence by construction — pass a detector
    analyzer (e.g. the ONNX slot) to screen image content itself.
    """

    def __init__(
        self,
        textrisk: TextRisk | None = None,
        matcher: Matcher | None = None,
        analyzers: list[Analyzer] | None = None,
        limits: MediaLimits | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.textrisk = textrisk or TextRisk(thresholds=thresholds)
        self.matcher = matcher
        self.analyzers = analyzers or []
        from vigie.settings import MediaLimits

        self.limits = limits or MediaLimits()

    def check_prompt(
        self, prompt: str, negative_prompt: str | None = None, lang: str | None = None
    ) -> GuardDecision:
        """Decide on a generation request from its prompt and negative prompt."""
        a = self.textrisk.assess(prompt, "prompt", negative_prompt, lang)
        return _from_assessment(a)

    def check_text(self, text: str, kind: str = "prompt", lang: str | None = None) -> GuardDecision:
        """Decide on a caption, comment, tag list or model tags."""
        return _from_assessment(self.textrisk.assess(text, kind, None, lang))

    def check_image(self, image: str | Path | bytes | np.ndarray | Any) -> GuardDecision:
        """Decide on an image: a path, encoded bytes, an RGB array or a PIL image."""
        from vigie.media import Item, iter_bytes, iter_file

        if isinstance(image, (str, Path)):
            got = list(iter_file(Path(image), self.limits))
        elif isinstance(image, bytes):
            got = list(iter_bytes("upload", image, self.limits))
        else:
            got = [Item(path="generated.png", data=_png(image), media_type="image/png")]
        items = [g for g in got if isinstance(g, Item)]
        if not items:
            why = "; ".join(f"{g.reason}: {g.message}" for g in got) or "no image found"  # type: ignore[union-attr]
            return GuardDecision("review", 0.0, "unreadable", [{"producer": "vigie.media", "rule": why}])
        decisions = [self._check_item(it) for it in items]
        worst = max(decisions, key=lambda d: (_ORDER[d.action], d.score))
        return worst

    def _check_item(self, item: Any) -> GuardDecision:
        from vigie.analyzers import analyze_item
        from vigie.pipeline import PipelineContext, process_item

        res = process_item(item, PipelineContext(limits=self.limits, matcher=self.matcher, analyzers=()))
        reasons: list[dict[str, Any]] = []
        action, score, label = "allow", 0.0, "none"
        if res.error:
            return GuardDecision(
                "review", 0.0, "unreadable", [{"producer": "vigie.media", "rule": res.error}]
            )
        for m in res.matches:
            action, score, label = "block", 1.0, "known_material"
            reasons.append(
                {
                    "producer": "vigie.banks",
                    "rule": "bank_match",
                    "bank": m["bank"],
                    "signal": m["signal"],
                    "distance": m["distance"],
                }
            )
        for f in analyze_item(item, self.analyzers) if self.analyzers else []:
            if f.kind == "prompt_risk" or f.kind.startswith("detector"):
                act = str(f.evidence.get("action") or ("review" if f.confidence >= 0.5 else "allow"))
                action = _worst(action, act)
                score = max(score, f.confidence)
                label = label if label != "none" else str(f.evidence.get("label") or f.kind)
                reasons.append(
                    {"producer": f.analyzer, "rule": f.kind, "confidence": f.confidence, "summary": f.summary}
                )
        return GuardDecision(action, score, label, reasons)


def _png(image: Any) -> bytes:
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise VigieError("an image array must be uint8, shaped (h, w) or (h, w, 3|4)")
        image = Image.fromarray(image)
    if not hasattr(image, "save"):
        raise VigieError(
            f"cannot screen a {type(image).__name__}: pass a path, bytes, an array or a PIL image"
        )
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _from_assessment(a: Assessment) -> GuardDecision:
    reasons = [{"producer": a.producer, **r.to_json()} for r in a.reasons]
    return GuardDecision(a.action, a.score, a.label, reasons)
