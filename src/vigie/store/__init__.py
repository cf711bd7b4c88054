"""Persistence: SQLAlchemy 2 models and Alembic migrations; SQLite by default, PostgreSQL by URL."""

from vigie.store.db import Database, open_db
from vigie.store.models import Bank, Base, Change, Entry

__all__ = ["Bank", "Base", "Change", "Database", "Entry", "open_db"]
