"""Generation guard: refuse risky prompts before generation, screen outputs after (banks, analyzers)."""

from vigie.guard.adapter import GuardedPipeline, GuardRefusal
from vigie.guard.core import Guard, GuardDecision
from vigie.guard.modelscan import ModelReport, scan_model

__all__ = ["Guard", "GuardDecision", "GuardRefusal", "GuardedPipeline", "ModelReport", "scan_model"]
