"""The signal vocabulary: names, value validation and distance, shared by banks, index and matching.

In the spirit of python-threatexchange's SignalType: small classes, one per signal, so a new signal is a
new class here plus an index for it, never a flag threaded through the code.
"""

from __future__ import annotations

import re
from typing import ClassVar

from vigie.errors import SignalError

_HEX = re.compile(r"^[0-9a-f]+$")


class SignalType:
    """A kind of comparable representation of an item."""

    name: ClassVar[str]
    hex_len: ClassVar[int]
    exact: ClassVar[bool] = True

    @classmethod
    def normalize(cls, value: str) -> str:
        """Return the canonical (lower-case hex) value or raise :class:`SignalError` saying what is wrong."""
        v = value.strip().lower()
        if len(v) != cls.hex_len:
            raise SignalError(f"{cls.name} must be {cls.hex_len} hex characters, got {len(v)}")
        if not _HEX.match(v):
            raise SignalError(f"{cls.name} value is not hexadecimal")
        return v

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        """0 for equal values; exact signals have no notion of nearness (1 means different)."""
        return 0 if a == b else 1


class MD5(SignalType):
    name = "md5"
    hex_len = 32


class SHA1(SignalType):
    name = "sha1"
    hex_len = 40


class SHA256(SignalType):
    name = "sha256"
    hex_len = 64


class PDQ(SignalType):
    """256-bit perceptual hash; compared by Hamming distance (match at ≤ 31 by convention)."""

    name = "pdq"
    hex_len = 64
    exact = False

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return (int(a, 16) ^ int(b, 16)).bit_count()


SIGNAL_TYPES: dict[str, type[SignalType]] = {t.name: t for t in (MD5, SHA1, SHA256, PDQ)}
EXACT_SIGNALS = tuple(n for n, t in SIGNAL_TYPES.items() if t.exact)


def signal_type(name: str) -> type[SignalType]:
    """Look a signal type up by name, with an error that lists the known ones."""
    try:
        return SIGNAL_TYPES[name.strip().lower()]
    except KeyError:
        raise SignalError(f"unknown signal type {name!r}; known: {', '.join(SIGNAL_TYPES)}") from None


def pdq_to_bytes(value: str) -> bytes:
    """32 raw bytes of a PDQ hex string, first hex digit = most significant bits of byte 0."""
    return bytes.fromhex(PDQ.normalize(value))


def pdq_from_bytes(raw: bytes) -> str:
    if len(raw) != 32:
        raise SignalError(f"pdq needs 32 bytes, got {len(raw)}")
    return raw.hex()
