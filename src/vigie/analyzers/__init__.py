"""Analyzers: one module each, all behind :class:`vigie.analyzers.base.Analyzer`."""

from __future__ import annotations

from collections.abc import Sequence

from vigie.analyzers.base import Analyzer, Finding
from vigie.media.item import Item


def default_analyzers() -> list[Analyzer]:
    """The analyzers whose dependencies are installed (cheap provenance first)."""
    from vigie.analyzers.provenance import GeneratorMetadataAnalyzer, ProvenanceTagsAnalyzer
    from vigie.analyzers.watermark import SDWatermarkAnalyzer

    found: list[Analyzer] = [GeneratorMetadataAnalyzer(), ProvenanceTagsAnalyzer(), SDWatermarkAnalyzer()]
    try:  # optional extra `vigie[c2pa]`
        import c2pa  # noqa: F401

        from vigie.analyzers.c2pa_manifest import C2PAAnalyzer

        found.append(C2PAAnalyzer())
    except ImportError:
        pass
    from vigie.analyzers.detector import configured_detector

    detector = configured_detector()  # the ONNX detector slot, only when a model is configured
    if detector is not None:
        found.append(detector)
    return found


def analyze_item(item: Item, analyzers: Sequence[Analyzer] | None = None) -> list[Finding]:
    """Run analyzers on one item; an analyzer that fails becomes an ``analyzer_error`` finding."""
    out: list[Finding] = []
    for a in default_analyzers() if analyzers is None else analyzers:
        try:
            out.extend(a.analyze(item))
        except Exception as exc:  # a parser bug must never lose the item
            out.append(
                Finding(analyzer=a.name, kind="analyzer_error", confidence=0.0, summary=str(exc)[:200])
            )
    return out


def ai_evidence_summary(findings: Sequence[Finding]) -> str | None:
    """One short line for reports, e.g. "ComfyUI metadata (0.90); IPTC trainedAlgorithmicMedia (0.90)"."""
    parts = []
    for f in findings:
        if f.ai_generated:
            what = f"{f.generator} metadata" if f.kind == "generator_metadata" else f.summary or f.kind
            parts.append(f"{what} ({f.confidence:.2f})")
    return "; ".join(dict.fromkeys(parts)) or None


__all__ = ["Analyzer", "Finding", "ai_evidence_summary", "analyze_item", "default_analyzers"]
