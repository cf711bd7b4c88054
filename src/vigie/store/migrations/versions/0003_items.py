"""Items submitted to the service, with their signals, matches, findings and decision (never the media).

Revision ID: 0003_items
Revises: 0002_api_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_items"
down_revision = "0002_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("external_id", sa.String(512)),
        sa.Column("uploader_id", sa.String(512)),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("signals", sa.JSON, nullable=False),
        sa.Column("matches", sa.JSON, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_items_external_id", "items", ["external_id"])
    op.create_index("ix_items_uploader_id", "items", ["uploader_id"])


def downgrade() -> None:
    op.drop_table("items")
