"""Heavy analysis queued for workers, with the item's media held encrypted until it has run.

Revision ID: 0006_analysis_jobs
Revises: 0005_idempotency
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_analysis_jobs"
down_revision = "0005_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_jobs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("item_id", sa.String(36), nullable=False, index=True),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("analyzers", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("analysis_jobs")
