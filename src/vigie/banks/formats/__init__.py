"""Import/export formats for banks, one module each: parse the whole file (naming every bad line), write."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO

from vigie.banks.model import EntryIn, EntryOut
from vigie.errors import VigieError

Parser = Callable[[IO[str], str], list[EntryIn]]
Writer = Callable[[Iterable[EntryOut], IO[str]], int]


def data_lines(fh: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of the lines that carry data: blank lines and '#' comments skipped."""
    for n, raw in enumerate(fh, 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield n, line


def get_format(name: str) -> tuple[Parser, Writer]:
    from vigie.banks.formats import csvfmt, hashlist, te, vics

    formats: dict[str, tuple[Parser, Writer]] = {
        "csv": (csvfmt.parse, csvfmt.write),
        "te": (te.parse, te.write),
        "vics": (vics.parse, vics.write),
        "hashlist": (hashlist.parse, hashlist.write),
    }
    try:
        return formats[name]
    except KeyError:
        raise VigieError(f"unknown format {name!r}; use one of {', '.join(formats)}") from None
