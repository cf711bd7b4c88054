"""Text risk: scores prompts, captions, tags and model tags for sexualisation of minors, in twelve languages.

``TextRisk().assess(text, kind=..., negative=..., lang=...)`` returns an :class:`Assessment` with a score
0–1, a label, an action under configurable thresholds, and the rules and terms that produced it.
"""

from vigie.textrisk.engine import KINDS, LABELS, Assessment, Reason, TextRisk, Thresholds
from vigie.textrisk.lang import detect_language
from vigie.textrisk.normalize import canonical

__all__ = [
    "KINDS",
    "LABELS",
    "Assessment",
    "Reason",
    "TextRisk",
    "Thresholds",
    "canonical",
    "detect_language",
]
