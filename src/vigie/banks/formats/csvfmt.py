"""CSV with a header: signal_type,value,source,category,ai_generated,external_id,note,enabled (+ extras)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO, Any

from vigie.banks.model import EntryIn, EntryOut, bad_search_data, long_labels
from vigie.errors import ImportFormatError, LineError, SignalError
from vigie.signals.types import signal_type

COLUMNS = ["signal_type", "value", "source", "category", "ai_generated", "external_id", "note", "enabled"]
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def parse_bool(text: str | None) -> bool | None:
    """'' → None; true/false/yes/no/1/0 → bool; anything else → ValueError."""
    t = (text or "").strip().lower()
    if not t:
        return None
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def parse(fh: IO[str], source: str = "") -> list[EntryIn]:
    reader = csv.DictReader(fh)
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise ImportFormatError([LineError(1, f"unreadable CSV header: {exc}")], source) from None
    missing = [c for c in ("signal_type", "value") if c not in header]
    if missing:
        raise ImportFormatError([LineError(1, f"header lacks column(s): {', '.join(missing)}")], source)
    reader.fieldnames = header
    out: list[EntryIn] = []
    errors: list[LineError] = []
    for row in _rows(reader, errors):
        line = reader.line_num
        if None in row:
            errors.append(LineError(line, "more fields than the header has columns"))
            continue
        try:
            st = signal_type(row["signal_type"] or "")
            value = st.normalize(row["value"] or "")
            enabled = parse_bool(row.get("enabled"))
            entry = EntryIn(
                signal_type=st.name,
                value=value,
                source=(row.get("source") or None),
                category=(row.get("category") or None),
                ai_generated=parse_bool(row.get("ai_generated")),
                external_id=(row.get("external_id") or None),
                note=(row.get("note") or None),
                enabled=True if enabled is None else enabled,
                extra={k: v for k, v in row.items() if k not in COLUMNS and v not in (None, "")} or None,
            )
        except (SignalError, ValueError) as exc:
            errors.append(LineError(line, str(exc)))
            continue
        if why := long_labels(entry) or bad_search_data(entry):
            errors.append(LineError(line, why))
            continue
        out.append(entry)
    if errors:
        raise ImportFormatError(errors, source)
    return out


def _rows(reader: csv.DictReader[str], errors: list[LineError]) -> Iterator[dict[str | Any, str | Any]]:
    """The reader's rows; a row the csv module cannot read (a field over its size limit) is a bad line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num + 1  # the reader counts the line it failed on only once it is read
            if errors and errors[-1].line == line:  # nothing consumed: the reader is stuck
                return
            errors.append(LineError(line, f"unreadable CSV: {exc}"))


def write(entries: Iterable[EntryOut], fh: IO[str]) -> int:
    rows = list(entries) if not isinstance(entries, list) else entries
    extra_cols = sorted({k for e in rows for k in (e.extra or {})} - set(COLUMNS))
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(COLUMNS + extra_cols)
    for e in rows:
        vals: list[Any] = [
            e.signal_type,
            e.value,
            e.source,
            e.category,
            e.ai_generated,
            e.external_id,
            e.note,
        ]
        vals = ["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in vals]
        w.writerow(
            [*vals, "true" if e.enabled else "false", *((e.extra or {}).get(c, "") for c in extra_cols)]
        )
    return len(rows)
