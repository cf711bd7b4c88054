"""Persistence: SQLAlchemy 2 models and Alembic migrations; SQLite by default, PostgreSQL by URL."""

from vigie.store.db import Database, open_db
from vigie.store.models import (
    AnalysisJob,
    ApiKey,
    Bank,
    Base,
    Change,
    Entry,
    IdempotentResponse,
    ItemRecord,
    OutboxEvent,
)

__all__ = [
    "AnalysisJob",
    "ApiKey",
    "Bank",
    "Base",
    "Change",
    "Database",
    "Entry",
    "IdempotentResponse",
    "ItemRecord",
    "OutboxEvent",
    "open_db",
]
