"""Stored answers to writes sent with an Idempotency-Key, so a retried request is not applied twice.

Revision ID: 0005_idempotency
Revises: 0004_webhooks
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_idempotency"
down_revision = "0004_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency",
        sa.Column("key_id", sa.Integer, primary_key=True),
        sa.Column("idem_key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency")
