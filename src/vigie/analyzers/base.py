"""The analyzer interface: code that looks at an item and returns findings with evidence and confidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from vigie.media.item import Item


@dataclass(frozen=True)
class Finding:
    """One observed fact. It is evidence for a human reviewer, never a verdict.

    ``analyzer`` names what produced it, ``confidence`` (0–1) how sure that producer is that ``kind`` holds.
    ``ai_generated`` is True/False when the finding speaks to synthetic origin, None when it does not.
    """

    analyzer: str
    kind: str
    confidence: float
    ai_generated: bool | None = None
    generator: str | None = None
    summary: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Analyzer(Protocol):
    """Every analyzer: a stable ``name`` and ``analyze``, which must not raise on hostile input."""

    name: str

    def analyze(self, item: Item) -> list[Finding]: ...
