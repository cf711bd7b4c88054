"""The unit of work: one piece of content with a display path, shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """One file or archive member held in memory.

    ``path`` is what a report shows: a file path, or ``outer.zip!dir/inner.jpg`` for archive members.
    ``media_type`` is sniffed from the bytes (never trusted from the name), e.g. ``image/jpeg``.
    """

    path: str
    data: bytes
    media_type: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ItemError:
    """A file that could not be read; the batch goes on and the report lists it."""

    path: str
    reason: str
    message: str
