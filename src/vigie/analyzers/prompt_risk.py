"""Hands the prompts found in generator metadata to textrisk: a file's own prompt is evidence of intent."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from vigie.analyzers.base import Finding

if TYPE_CHECKING:
    from vigie.textrisk import TextRisk


@lru_cache(maxsize=1)
def _engine() -> TextRisk:
    from vigie.textrisk import TextRisk

    return TextRisk()


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
