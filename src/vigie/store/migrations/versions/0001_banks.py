"""Banks, entries and the change log.

Revision ID: 0001_banks
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_banks"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "banks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("pdq_threshold", sa.Integer, nullable=False),
        sa.Column("pdq_min_quality", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "entries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", sa.Integer, sa.ForeignKey("banks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("signal_type", sa.String(16), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("source", sa.String(256)),
        sa.Column("category", sa.String(256)),
        sa.Column("ai_generated", sa.Boolean),
        sa.Column("external_id", sa.String(512)),
        sa.Column("note", sa.Text),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("extra", sa.JSON),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_entries_bank_id", "entries", ["bank_id"])
    op.create_index("ix_entries_signal_value", "entries", ["signal_type", "value"])
    op.create_table(
        "bank_changes",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", sa.Integer, nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("lo", sa.BigInteger, nullable=False),
        sa.Column("hi", sa.BigInteger, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bank_changes")
    op.drop_index("ix_entries_signal_value", "entries")
    op.drop_index("ix_entries_bank_id", "entries")
    op.drop_table("entries")
    op.drop_table("banks")
