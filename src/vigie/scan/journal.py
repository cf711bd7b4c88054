"""The scan journal: a small SQLite file that makes a scan resumable after a crash or kill -9.

Each top-level input is committed together with all of its item results in one transaction, so after an
interruption an input is either wholly recorded or wholly pending: no item lost, none counted twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vigie.errors import ConflictError, VigieError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (
    seq INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results (
    input_seq INTEGER NOT NULL REFERENCES inputs(seq),
    ordinal INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (input_seq, ordinal)
);
"""


class Journal:
    """Inputs of one scan, their state and their results."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def create(cls, path: Path, inputs: Sequence[Path], options: dict[str, Any]) -> Journal:
        """Start a new scan, replacing any old journal at ``path``."""
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        j = cls(path)
        with j._tx():
            j._db.executemany("INSERT INTO inputs(seq, path) VALUES (?, ?)", enumerate(map(str, inputs)))
            j._db.execute("INSERT INTO meta VALUES ('options', ?)", (json.dumps(options),))
            j._db.execute("INSERT INTO meta VALUES ('finished', '0')")
        return j

    @classmethod
    def resume(cls, path: Path) -> Journal:
        if not path.exists():
            raise ConflictError(f"nothing to resume: no scan journal at {path}")
        try:
            j = cls(path)
            j.options  # noqa: B018 - reads the journal once, so damage shows here and not mid-scan
        except sqlite3.DatabaseError as exc:  # a disk error or a file overwritten: nothing to go on from
            raise VigieError(
                f"the scan journal at {path} is damaged ({exc}); run the scan again without --resume"
            ) from None
        return j

    def _tx(self) -> _Tx:
        return _Tx(self._db)

    @property
    def options(self) -> dict[str, Any]:
        row = self._db.execute("SELECT value FROM meta WHERE key='options'").fetchone()
        return json.loads(row[0]) if row else {}

    def pending(self) -> list[tuple[int, str]]:
        return list(self._db.execute("SELECT seq, path FROM inputs WHERE done=0 ORDER BY seq"))

    def counts(self) -> tuple[int, int]:
        total, done = self._db.execute("SELECT COUNT(*), COALESCE(SUM(done), 0) FROM inputs").fetchone()
        return int(total), int(done)

    def record(self, seq: int, results: Sequence[dict[str, Any]]) -> None:
        """Store every result of one input and mark it done, atomically."""
        with self._tx():
            self._db.execute("DELETE FROM results WHERE input_seq=?", (seq,))
            self._db.executemany(
                "INSERT INTO results(input_seq, ordinal, data) VALUES (?, ?, ?)",
                [(seq, i, json.dumps(r, separators=(",", ":"))) for i, r in enumerate(results)],
            )
            self._db.execute("UPDATE inputs SET done=1 WHERE seq=?", (seq,))

    def results(self) -> Iterator[dict[str, Any]]:
        for (data,) in self._db.execute("SELECT data FROM results ORDER BY input_seq, ordinal"):
            yield json.loads(data)

    def mark_finished(self) -> None:
        with self._tx():
            self._db.execute("UPDATE meta SET value='1' WHERE key='finished'")

    def close(self) -> None:
        self._db.close()


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
