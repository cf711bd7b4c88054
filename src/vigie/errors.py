"""One exception hierarchy, so the CLI and API can turn any failure into a message a user can act on."""

from __future__ import annotations

from dataclasses import dataclass


class VigieError(Exception):
    """Base of every error vigie raises on purpose; ``str(err)`` is meant for the user."""


class ConfigError(VigieError):
    """A setting is missing or invalid."""


class MediaError(VigieError):
    """A file could not be opened safely; ``reason`` is a short stable code for reports."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SignalError(VigieError):
    """A signal value is malformed (bad hex, wrong length, unknown type)."""


class IndexStoreError(VigieError):
    """An index file on disk is missing, corrupt or of an unknown version."""


class NotFoundError(VigieError):
    """A named object (bank, entry, key) does not exist."""


class ConflictError(VigieError):
    """An object already exists or a change contradicts the current state."""


@dataclass(frozen=True)
class LineError:
    """One bad line of an import file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportFormatError(VigieError):
    """An import was refused; ``errors`` names every bad line, nothing was written."""

    def __init__(self, errors: list[LineError], source: str = "") -> None:
        self.errors = errors
        self.source = source
        head = f"{source}: " if source else ""
        shown = "\n".join(f"  {e}" for e in errors[:50])
        more = f"\n  … and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{head}import refused, {len(errors)} bad line(s), nothing imported:\n{shown}{more}")
