"""The unit of work: one piece of content with a display path, shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Item:
    """One file or archive member held in memory.

    ``path`` is what a report shows: a file path, or ``outer.zip!dir/inner.jpg`` for archive members.
    ``media_type`` is sniffed from the bytes (never trusted from the name), e.g. ``image/jpeg``.
    """

    path: str
    data: bytes
    media_type: str | None = None
    decoded: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)
    """What one stage learnt of the item, kept for the next: ``"rgb"`` is the whole image as Pillow's
    ``convert("RGB")`` gives it (read-only), left by hashing when it decoded that anyway (lossless and small
    images), so the watermark check does not decode a PNG a second time; ``"limits"``, ``"refused"`` and
    ``"header"`` are :func:`vigie.media.image.image_header`'s. It lives as long as the item."""

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ItemError:
    """A file that could not be read; the batch goes on and the report lists it."""

    path: str
    reason: str
    message: str
