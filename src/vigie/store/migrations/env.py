"""Alembic environment: runs on the connection vigie hands over (see vigie.store.db.migrate)."""

from __future__ import annotations

from alembic import context

from vigie.store.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - vigie always passes its connection
    raise RuntimeError("run migrations through vigie.store.open_db")
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
