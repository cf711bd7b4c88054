"""Text-risk findings: prompts found in generator metadata, and the captions and prompts sent with an item."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from vigie.analyzers.base import Finding

if TYPE_CHECKING:
    from vigie.textrisk import TextRisk


@lru_cache(maxsize=1)
def _engine() -> TextRisk:
    """One engine per process, with the configured review and block thresholds."""
    from vigie.settings import Settings
    from vigie.textrisk import TextRisk, Thresholds

    s = Settings.from_env()
    return TextRisk(thresholds=Thresholds(review=s.text_review, block=s.text_block))


def prompt_risk_findings(findings: Sequence[Finding], engine: TextRisk | None = None) -> list[Finding]:
    """One ``prompt_risk`` finding per generator-metadata finding whose prompt scores above ``allow``."""
    out: list[Finding] = []
    for f in findings:
        prompt = f.evidence.get("prompt") if f.kind == "generator_metadata" else None
        if not prompt:
            continue
        a = (engine or _engine()).assess(str(prompt), "prompt", f.evidence.get("negative_prompt") or None)
        if a.action == "allow" and a.label != "sexual_minors":
            continue
        out.append(
            Finding(
                analyzer="textrisk",
                kind="prompt_risk",
                confidence=round(a.score, 3),
                summary=f"embedded {f.generator or 'generator'} prompt: {a.label}, {a.action}"
                f" (score {a.score:.2f})",
                evidence={"found_in": f.evidence.get("found_in"), **a.to_json()},
            )
        )
    return out


def context_findings(context: dict[str, object], engine: TextRisk | None = None) -> list[Finding]:
    """``text_risk`` findings for the caption and prompt a platform sent with an item, unless allowed."""
    out: list[Finding] = []
    for field_name, kind in (("caption", "caption"), ("prompt", "prompt")):
        text = context.get(field_name)
        if not isinstance(text, str) or not text.strip():
            continue
        a = (engine or _engine()).assess(text, kind)
        if a.action == "allow" and a.label != "sexual_minors":
            continue
        out.append(
            Finding(
                analyzer="textrisk",
                kind="text_risk",
                confidence=round(a.score, 3),
                summary=f"{field_name}: {a.label}, {a.action} (score {a.score:.2f})",
                evidence={"field": field_name, **a.to_json()},
            )
        )
    return out
