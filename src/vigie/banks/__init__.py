"""Banks of known signals (match and allow), their import/export formats, and matching against them."""

from vigie.banks.model import BankInfo, EntryIn, EntryOut, Match, MatchResult
from vigie.banks.store import BankStore

__all__ = ["BankInfo", "BankStore", "EntryIn", "EntryOut", "Match", "MatchResult"]
