"""Signals: one module per signal type (compute, compare), plus the shared vocabulary in ``types``."""

from vigie.signals.item import ItemSignals, error_signals, hash_item, hash_path
from vigie.signals.types import EXACT_SIGNALS, SIGNAL_TYPES, SignalType, signal_type

__all__ = [
    "EXACT_SIGNALS",
    "SIGNAL_TYPES",
    "ItemSignals",
    "SignalType",
    "error_signals",
    "hash_item",
    "hash_path",
    "signal_type",
]
