"""Open a database by URL and bring its schema to the latest migration (SQLite default, PostgreSQL by URL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from vigie.errors import ConfigError

_MIGRATED: set[str] = set()
_LOCK = threading.Lock()


class Database:
    """An engine and a session factory; ``session()`` commits on success and rolls back on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = sa.create_engine(url, **_engine_args(url))
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise ConfigError(f"cannot use database URL: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()


def _engine_args(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def migrate(db: Database) -> None:
    """Run every packaged Alembic migration not yet applied (all heads)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("vigie.store") / "migrations"))
    with _one_migrator(db), db.engine.begin() as conn:
        if db.dialect == "postgresql":  # replicas starting together: the others wait, then find it done
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


MIGRATION_LOCK = 0x76696769
"""PostgreSQL advisory lock key held while migrating ("vigi")."""


@contextmanager
def _one_migrator(db: Database) -> Iterator[None]:
    """On a SQLite file, an exclusive lock on a file beside it while migrating: `vigie serve --workers 2`
    on a fresh home started both workers migrating at once, and one died on "table banks already exists"."""
    path = db.engine.url.database if db.dialect == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    import fcntl

    with open(f"{path}.migrate-lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def open_db(url: str) -> Database:
    """A ready database: connectable and migrated (once per URL per process)."""
    db = Database(url)
    with _LOCK:
        if url not in _MIGRATED:
            try:
                migrate(db)
            except sa.exc.OperationalError as exc:
                raise ConfigError(f"cannot open database {db.engine.url!r}: {exc.orig}") from exc
            _MIGRATED.add(url)
    return db
