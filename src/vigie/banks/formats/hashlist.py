"""Plain md5/sha1/sha256 lists, type by length; md5sum/sha256sum output (hash, spaces, name) works too.

The listed file name is kept as the private ``file_name`` (see :data:`vigie.banks.model.PRIVATE_EXTRA`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from vigie.banks.formats import data_lines
from vigie.banks.model import EntryIn, EntryOut
from vigie.errors import ImportFormatError, LineError, SignalError
from vigie.signals.types import MD5, SHA1, SHA256

_BY_LEN = {32: MD5, 40: SHA1, 64: SHA256}


def parse(fh: IO[str], source: str = "") -> list[EntryIn]:
    out: list[EntryIn] = []
    errors: list[LineError] = []
    for n, line in data_lines(fh):
        value, _, name = line.partition(" ")
        st = _BY_LEN.get(len(value))
        if st is None:
            errors.append(LineError(n, f"{len(value)} characters: not an md5 (32), sha1 (40) or sha256 (64)"))
            continue
        listed = name.strip(" *")  # md5sum's file name: where the file sat, never an id served with matches
        try:
            entry = EntryIn(
                signal_type=st.name,
                value=st.normalize(value),
                extra={"file_name": listed} if listed else None,
            )
        except SignalError as exc:
            errors.append(LineError(n, str(exc)))
            continue
        out.append(entry)
    if errors:
        raise ImportFormatError(errors, source)
    return out


def write(entries: Iterable[EntryOut], fh: IO[str]) -> int:
    n = 0
    for e in entries:
        if e.signal_type in ("md5", "sha1", "sha256"):
            fh.write(e.value + "\n")
            n += 1
    return n
