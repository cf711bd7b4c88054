"""ThreatExchange / HMA text: one ``SIGNAL_TYPE VALUE`` per line (e.g. ``pdq 0f1e…``); '#' comments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from vigie.banks.formats import data_lines
from vigie.banks.model import EntryIn, EntryOut
from vigie.errors import ImportFormatError, LineError, SignalError
from vigie.signals.types import signal_type


def parse(fh: IO[str], source: str = "") -> list[EntryIn]:
    out: list[EntryIn] = []
    errors: list[LineError] = []
    for n, line in data_lines(fh):
        parts = line.split()
        if len(parts) != 2:
            errors.append(LineError(n, "expected 'SIGNAL_TYPE VALUE'"))
            continue
        try:
            st = signal_type(parts[0])
            out.append(EntryIn(signal_type=st.name, value=st.normalize(parts[1])))
        except SignalError as exc:
            errors.append(LineError(n, str(exc)))
    if errors:
        raise ImportFormatError(errors, source)
    return out


def write(entries: Iterable[EntryOut], fh: IO[str]) -> int:
    n = 0
    for e in entries:
        fh.write(f"{e.signal_type} {e.value}\n")
        n += 1
    return n
