"""Text-risk findings: prompts found in generator metadata, and the captions and prompts sent with an item."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from vigie.analyzers.base import Finding

if TYPE_CHECKING:
    from vigie.textrisk import Assessment, TextRisk


@lru_cache(maxsize=1)
def _engine() -> TextRisk:
    """One engine per process, with the configured review and block thresholds."""
    from vigie.settings import Settings
    from vigie.textrisk import TextRisk, Thresholds

    s = Settings.from_env()
    return TextRisk(thresholds=Thresholds(review=s.text_review, block=s.text_block))


def _finding(a: Assessment, kind: str, where: str, origin: dict[str, object]) -> Finding | None:
    """A finding for a text textrisk did not simply allow (None otherwise)."""
    if a.action == "allow" and a.label != "sexual_minors":
        return None
    return Finding(
        analyzer="textrisk",
        kind=kind,
        confidence=round(a.score, 3),
        summary=f"{where}: {a.label}, {a.action} (score {a.score:.2f})",
        evidence={**origin, **a.to_json()},
    )


def prompt_risk_findings(findings: Sequence[Finding], engine: TextRisk | None = None) -> list[Finding]:
    """One ``prompt_risk`` finding per generator-metadata finding whose prompt scores above ``allow``."""
    out: list[Finding] = []
    for f in findings:
        prompt = f.evidence.get("prompt") if f.kind == "generator_metadata" else None
        if prompt:
            a = (engine or _engine()).assess(str(prompt), "prompt", f.evidence.get("negative_prompt") or None)
            where = f"embedded {f.generator or 'generator'} prompt"
            if got := _finding(a, "prompt_risk", where, {"found_in": f.evidence.get("found_in")}):
                out.append(got)
    return out


def context_findings(context: dict[str, object], engine: TextRisk | None = None) -> list[Finding]:
    """``text_risk`` findings for the caption and prompt a platform sent with an item, unless allowed."""
    out: list[Finding] = []
    for field_name in ("caption", "prompt"):
        text = context.get(field_name)
        if isinstance(text, str) and text.strip():
            a = (engine or _engine()).assess(text, field_name)
            if got := _finding(a, "text_risk", field_name, {"field": field_name}):
                out.append(got)
    return out
