"""Import/export formats for banks, one module each: parse the whole file (naming every bad line), write."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO

from vigie.banks.model import EntryIn, EntryOut
from vigie.errors import VigieError

Parser = Callable[[IO[str], str], list[EntryIn]]
Writer = Callable[[Iterable[EntryOut], IO[str]], int]


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
