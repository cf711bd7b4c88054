"""BankStore: create, fill, list, export and remove banks; every write also logs a change for the indexes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigie.banks.model import (
    INTERNAL_EXTRA,
    PRIVATE_EXTRA,
    BankInfo,
    EntryIn,
    EntryOut,
    bad_search_data,
    has_nul,
    long_labels,
    nul_labels,
)
from vigie.errors import ConflictError, ImportFormatError, LineError, NotFoundError, SignalError, VigieError
from vigie.signals.types import signal_type
from vigie.store import Bank, Change, Database, Entry
from vigie.store.models import utcnow

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CHUNK = 5000
BANK_KINDS = ("match", "allow")


def _info(b: Bank, count: int = 0) -> BankInfo:
    return BankInfo(
        id=b.id,
        name=b.name,
        kind=b.kind,
        pdq_threshold=b.pdq_threshold,
        pdq_min_quality=b.pdq_min_quality,
        description=b.description,
        entry_count=count,
        created_at=b.created_at,
    )


def validate_entries(entries: Iterable[EntryIn], source: str = "") -> list[EntryIn]:
    """Normalised copies of ``entries``, or ImportFormatError naming every invalid one (1-based)."""
    out: list[EntryIn] = []
    errors: list[LineError] = []
    for n, e in enumerate(entries, 1):
        try:
            st = signal_type(e.signal_type)
            e.signal_type = st.name
            e.value = st.normalize(e.value)
        except SignalError as exc:
            errors.append(LineError(n, str(exc)))
            continue
        if why := long_labels(e) or nul_labels(e) or bad_search_data(e):
            errors.append(LineError(n, why))
            continue
        out.append(e)
    if errors:
        raise ImportFormatError(errors, source)
    return out


class BankStore:
    """All bank operations over one :class:`vigie.store.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------------------------------ banks
    def create_bank(
        self,
        name: str,
        kind: str = "match",
        pdq_threshold: int = 31,
        pdq_min_quality: int = 50,
        description: str = "",
    ) -> BankInfo:
        if not _NAME.match(name):
            raise VigieError(f"invalid bank name {name!r}: use letters, digits, '_', '.', '-' (≤ 64)")
        if kind not in BANK_KINDS:
            raise VigieError(f"bank kind must be one of {', '.join(BANK_KINDS)}, not {kind!r}")
        if not 0 <= pdq_threshold <= 256 or not 0 <= pdq_min_quality <= 100:
            raise VigieError("pdq threshold must be 0–256 and minimum quality 0–100")
        if has_nul(description):
            raise VigieError("a bank's description may not hold a NUL character (U+0000)")
        try:
            with self.db.session() as s:
                bank = Bank(
                    name=name,
                    kind=kind,
                    pdq_threshold=pdq_threshold,
                    pdq_min_quality=pdq_min_quality,
                    description=description,
                )
                s.add(bank)
                s.flush()
                return _info(bank)
        except IntegrityError:
            raise ConflictError(f"bank {name!r} already exists") from None

    def list_banks(self) -> list[BankInfo]:
        with self.db.session() as s:
            counts = dict(s.execute(sa.select(Entry.bank_id, sa.func.count()).group_by(Entry.bank_id)).all())
            return [_info(b, counts.get(b.id, 0)) for b in s.scalars(sa.select(Bank).order_by(Bank.name))]

    def _bank(self, s: Session, name: str) -> Bank:
        bank = s.scalar(sa.select(Bank).where(Bank.name == name))
        if bank is None:
            raise NotFoundError(f"no bank named {name!r} (see `vigie bank list`)")
        return bank

    def get_bank(self, name: str) -> BankInfo:
        with self.db.session() as s:
            bank = self._bank(s, name)
            count = s.scalar(sa.select(sa.func.count()).where(Entry.bank_id == bank.id)) or 0
            return _info(bank, count)

    def update_bank(
        self,
        name: str,
        pdq_threshold: int | None = None,
        pdq_min_quality: int | None = None,
        description: str | None = None,
    ) -> BankInfo:
        with self.db.session() as s:
            bank = self._bank(s, name)
            if pdq_threshold is not None:
                bank.pdq_threshold = pdq_threshold
            if pdq_min_quality is not None:
                bank.pdq_min_quality = pdq_min_quality
            if description is not None:
                bank.description = description
            return _info(bank)

    def remove_bank(self, name: str) -> int:
        """Remove a bank and its entries; returns how many entries went."""
        with self.db.session() as s:
            bank = self._bank(s, name)
            lo, hi, n = s.execute(
                sa.select(sa.func.min(Entry.id), sa.func.max(Entry.id), sa.func.count()).where(
                    Entry.bank_id == bank.id
                )
            ).one()
            s.execute(sa.delete(Entry).where(Entry.bank_id == bank.id))
            if n:
                s.add(Change(bank_id=bank.id, op="remove", lo=lo, hi=hi))
            s.delete(bank)
            return int(n)

    # ---------------------------------------------------------------------------------------- entries
    def add_entries(self, bank: str, entries: Iterable[EntryIn], source: str = "") -> int:
        """Add validated entries in one transaction; all land or none (ImportFormatError lists the bad)."""
        valid = validate_entries(entries, source)
        with self.db.session() as s:
            return self._insert(s, self._bank(s, bank), valid)

    def _insert(self, s: Session, bank: Bank, entries: Sequence[EntryIn]) -> int:
        if not entries:
            return 0
        now = utcnow()
        lo = hi = None
        for start in range(0, len(entries), _CHUNK):
            rows = [
                {
                    "bank_id": bank.id,
                    "signal_type": e.signal_type,
                    "value": e.value,
                    "source": e.source,
                    "category": e.category,
                    "ai_generated": e.ai_generated,
                    "external_id": e.external_id,
                    "note": e.note,
                    "enabled": e.enabled,
                    "extra": e.extra,
                    "added_at": now,
                }
                for e in entries[start : start + _CHUNK]
            ]
            ids = s.scalars(sa.insert(Entry).returning(Entry.id), rows).all()
            lo = min(ids) if lo is None else min(lo, *ids)
            hi = max(ids) if hi is None else max(hi, *ids)
        assert lo is not None and hi is not None
        s.add(Change(bank_id=bank.id, op="add", lo=lo, hi=hi))
        return len(entries)

    def remove_entries(self, bank: str, ids: Iterable[int]) -> int:
        return self._change_entries(bank, list(ids), None)

    def set_enabled(self, bank: str, ids: Iterable[int], enabled: bool) -> int:
        return self._change_entries(bank, list(ids), enabled)

    def _change_entries(self, bank: str, ids: list[int], enabled: bool | None) -> int:
        if not ids:
            return 0
        with self.db.session() as s:
            b = self._bank(s, bank)
            where = sa.and_(Entry.bank_id == b.id, Entry.id.in_(ids))
            if enabled is None:
                n = s.execute(sa.delete(Entry).where(where)).rowcount  # type: ignore[attr-defined]
            else:
                n = s.execute(sa.update(Entry).where(where).values(enabled=enabled)).rowcount  # type: ignore[attr-defined]
            for lo, hi in _runs(sorted(set(ids))):
                s.add(Change(bank_id=b.id, op="remove" if enabled is None else "update", lo=lo, hi=hi))
            return int(n or 0)

    def iter_entries(self, bank: str, batch: int = 10_000) -> Iterator[EntryOut]:
        """Every entry of a bank in id order, streamed in batches (fine for millions)."""
        with self.db.session() as s:
            bank_id = self._bank(s, bank).id
        last = 0
        while True:
            with self.db.session() as s:
                rows = s.scalars(
                    sa.select(Entry)
                    .where(Entry.bank_id == bank_id, Entry.id > last)
                    .order_by(Entry.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for r in rows:
                yield entry_out(r)
            last = rows[-1].id

    # ---------------------------------------------------------------------------------- import/export
    def import_file(self, bank: str, path: Path, fmt: str) -> int:
        """Parse a whole file first; then insert it in one transaction. Nothing lands if any line is bad."""
        from vigie.banks.formats import get_format

        parse, _ = get_format(fmt)
        self.get_bank(bank)  # a wrong bank name fails before a large file is parsed
        try:
            with path.open("r", encoding="utf-8-sig", newline="") as fh:
                entries = parse(fh, str(path))
        except UnicodeDecodeError as exc:
            raise ImportFormatError([LineError(0, f"not UTF-8 text: {exc}")], str(path)) from None
        return self.add_entries(bank, entries, str(path))

    def export(self, bank: str, fmt: str, out: IO[str]) -> int:
        from vigie.banks.formats import get_format

        _, write = get_format(fmt)
        home = INTERNAL_EXTRA if fmt == "vics" else INTERNAL_EXTRA | PRIVATE_EXTRA
        own = (  # vigie's own search aids (derived signals, local features) and drive paths stay home
            replace(e, extra={k: v for k, v in e.extra.items() if k not in home} or None) if e.extra else e
            for e in self.iter_entries(bank)
            if not (e.extra or {}).get("derived")
        )
        return write(own, out)


def entry_out(r: Entry | sa.Row[Any]) -> EntryOut:
    """An entry as the API shows it, from its ORM object or a Core row of the entries table."""
    return EntryOut(
        id=r.id,
        bank_id=r.bank_id,
        signal_type=r.signal_type,
        value=r.value,
        source=r.source,
        category=r.category,
        ai_generated=r.ai_generated,
        external_id=r.external_id,
        note=r.note,
        enabled=r.enabled,
        extra=r.extra,
        added_at=r.added_at,
    )


def _runs(ids: list[int]) -> Iterator[tuple[int, int]]:
    """Contiguous runs of sorted ids as (lo, hi)."""
    start = prev = ids[0]
    for i in ids[1:]:
        if i != prev + 1:
            yield start, prev
            start = i
        prev = i
    yield start, prev
