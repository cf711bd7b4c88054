"""The verifier's candidate set: media entries with local features or a weak PDQ's stable bits, and the
PDQs that point to each.

A media entry added by ``vigie bank add`` owns its own PDQ, the PDQs of its derived crops and tilts (entries
of their own) and hints (crops and tilts too flat for an entry, kept in its ``extra``). A query's candidates
are the owners nearest to any of its hashes, at a radius (90 bits) far beyond what the PDQ index prunes, so
the set is kept apart and searched by brute force in a numba kernel.

Reading the set is costly for a large media bank (each entry's packed features are kilobytes in the same
row: 22 s for 100,000 media entries on SQLite), so it is read once and then kept up to date from the bank
change log: an added range is read on its own, and only a removal or an update (rare) reads everything again.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from vigie.banks.model import PDQ_HEX
from vigie.index import _kernels as K
from vigie.store import Database, Entry


def _words(raw: bytes) -> np.ndarray:
    """Packed 32-byte PDQs as (n, 4) uint64 words in a fresh, 8-byte aligned buffer (the kernel reads it)."""
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32).copy().view(np.uint64)


def _codes(values: Sequence[str]) -> np.ndarray:
    """Hex PDQs as kernel words."""
    return _words(bytes.fromhex("".join(values)))


@dataclass(frozen=True)
class _Arrays:
    """One immutable state: searches read it while an update builds the next one."""

    owners: np.ndarray  # (m,) int64 owner entry ids, in no particular order
    alive: np.ndarray  # (m,) bool: False once the owner was removed or disabled
    owner_of: np.ndarray  # (n,) int64 position in ``owners`` of each code's owner
    codes: np.ndarray  # (n, 4) uint64

    @classmethod
    def empty(cls) -> _Arrays:
        none = np.zeros(0, np.int64)
        return cls(none, np.zeros(0, bool), none, np.zeros((0, 4), np.uint64))


@dataclass
class VerifiableSet:
    """Owners and their codes; ``search`` is safe to call while another thread applies bank changes."""

    db: Database
    _arrays: _Arrays | None = None  # None: not read yet, or too much of it is stale
    _position: dict[int, int] = field(default_factory=dict)  # owner id -> index in owners
    _main: dict[tuple[int, str | None], int] = field(default_factory=dict)  # (bank, external id) -> owner
    _entries: set[int] = field(default_factory=set)  # entry ids whose codes are in the set
    _weak: set[int] = field(default_factory=set)  # owners with a weak PDQ's stable bits
    _stale: int = 0  # codes of removed or disabled entries still in the arrays
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def search(self, hexes: Sequence[str], radius: int, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` (owner entry id, distance) within ``radius``: nearest first, then by id."""
        arrays = self._current()
        if not len(arrays.owners):
            return []
        best = np.full(len(arrays.owners), 256, dtype=np.int64)
        K.nearest_per_owner(arrays.codes, arrays.owner_of, _codes(list(hexes)), best)
        best[~arrays.alive] = 256
        k = min(limit, len(best))
        cut = min(radius, int(np.partition(best, k - 1)[k - 1]))
        near = np.nonzero(best <= cut)[0]
        near = near[np.lexsort((arrays.owners[near], best[near]))][:limit]
        return [(int(arrays.owners[i]), int(best[i])) for i in near]

    def any_weak(self) -> bool:
        """Whether any owner is a weak PDQ with stable bits: the one check a query without keypoints has
        (reads the set first if it was never read: seconds for a large media bank)."""
        self._current()
        return bool(self._weak)

    def known_weak(self) -> bool | None:
        """:meth:`any_weak` without reading: None while the set was never read."""
        return None if self._arrays is None else bool(self._weak)

    def entries_added(self, lo: int, hi: int) -> None:
        """Bring in the entries of one added id range (a no-op before the first full read)."""
        with self._lock:
            if self._arrays is not None:
                self._read(Entry.id.between(lo, hi))

    def entries_changed(self, lo: int, hi: int) -> None:
        """Entries of one id range were removed, disabled or enabled (a no-op before the first full read).

        Removed and disabled owners stop being candidates at once; their codes stay in the arrays until
        they are a quarter of them, when the next search reads the whole set again (for 100,000 media
        entries that read takes seconds, so it is not paid for every removal). The range is then read
        again, which brings back what was enabled."""
        with self._lock:
            arrays = self._arrays
            if arrays is None:
                return
            hit = {i for i in self._entries if lo <= i <= hi}
            self._entries.difference_update(hit)
            self._weak.difference_update(hit)
            self._stale += len(hit)
            dead = [self._position[i] for i in hit if i in self._position]
            if dead:
                alive = arrays.alive.copy()
                alive[dead] = False
                self._arrays = _Arrays(arrays.owners, alive, arrays.owner_of, arrays.codes)
                self._main = {k: o for k, o in self._main.items() if o not in hit}
            if self._stale * 4 > len(arrays.codes):
                self._arrays = None
                return
            self._read(Entry.id.between(lo, hi))

    def _current(self) -> _Arrays:
        arrays = self._arrays
        if arrays is not None:
            return arrays
        with self._lock:  # one reader; concurrent searches wait for its result instead of re-reading
            if self._arrays is None:
                self._position, self._main, self._entries, self._stale = {}, {}, set(), 0
                self._weak = set()
                self._arrays = _Arrays.empty()
                self._read(sa.true())
            return self._arrays

    def _read(self, where: sa.ColumnElement[bool]) -> None:
        """Add the codes of the entries ``where`` selects (caller holds the lock), streamed in id order.

        Only the keys needed come out of ``extra``, by the database's JSON operators: the packed features
        stay in the database. Rows become compact codes as they arrive (100,000 media entries held as
        rows took 800 MB); entries already in the set are skipped."""
        extra = Entry.extra
        query = (
            sa.select(
                Entry.id,
                Entry.bank_id,
                Entry.external_id,
                Entry.value,
                extra["features"].as_string().is_not(None),
                extra["pdq_stable"].as_string().is_not(None),
                extra["derived"].as_string(),
                extra["of"].as_string(),
                extra["verify_hints"].as_json(),
            )
            .where(
                where,
                Entry.signal_type == "pdq",
                Entry.enabled.is_(True),
                Entry.extra.is_not(None),
                sa.cast(Entry.extra, sa.Text) != "null",  # JSON null, as an entry without extras has
            )
            .order_by(Entry.id)
        )
        owner_ids: list[int] = []
        raw = bytearray()
        orphans: list[tuple[int, int, str | None, str]] = []  # derived rows read before their entry

        def take(entry: int, owner: int, value: str) -> None:
            self._entries.add(entry)
            owner_ids.append(owner)
            raw.extend(bytes.fromhex(value))

        with self.db.session() as s:
            for i, b, x, v, has_features, weak, derived, of, hints in s.execute(
                query, execution_options={"yield_per": 20_000}
            ):
                if i in self._entries:
                    continue
                if has_features or weak:
                    if weak:
                        self._weak.add(i)
                    self._main[(b, x)] = i
                    take(i, i, v)
                    for h in hints if isinstance(hints, list) else ():
                        # crops and tilts too flat for a PDQ entry still say where to look
                        if isinstance(h, str) and PDQ_HEX.fullmatch(h):
                            owner_ids.append(i)
                            raw.extend(bytes.fromhex(h))
                elif derived:
                    owner = self._main.get((b, of))
                    if owner is not None:
                        take(i, owner, v)
                    else:
                        orphans.append((i, b, of, v))
            for i, b, of, v in orphans:
                owner = self._main.get((b, of))
                if owner is not None:
                    take(i, owner, v)
        if not owner_ids:
            return
        old = self._arrays or _Arrays.empty()
        new_owners = [o for o in dict.fromkeys(owner_ids) if o not in self._position]
        for o in new_owners:
            self._position[o] = len(self._position)
        alive = np.concatenate([old.alive, np.ones(len(new_owners), dtype=bool)])
        alive[[self._position[o] for o in set(owner_ids)]] = True  # an owner enabled again
        codes = _words(bytes(raw))
        self._arrays = _Arrays(  # swapped in whole: a search holds either the old state or this one
            np.concatenate([old.owners, np.array(new_owners, dtype=np.int64)]),
            alive,
            np.concatenate([old.owner_of, np.array([self._position[o] for o in owner_ids], dtype=np.int64)]),
            np.concatenate([old.codes, codes]),
        )
