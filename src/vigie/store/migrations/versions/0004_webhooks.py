"""Webhook outbox: decisions to deliver, written in the same transaction as the item.

Revision ID: 0004_webhooks
Revises: 0003_items
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_webhooks"
down_revision = "0003_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("dead_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["delivered_at", "dead_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("webhook_outbox")
