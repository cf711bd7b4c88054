"""Analyzers: one module each, all behind :class:`vigie.analyzers.base.Analyzer`."""

from vigie.analyzers.base import Analyzer, Finding

__all__ = ["Analyzer", "Finding"]
