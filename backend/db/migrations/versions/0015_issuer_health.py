"""issuer health: each sync run's outcome per issuer, and the probe claim while one is down

Revision ID: 0015_issuer_health
Revises: 0013_transcript_lines
Create Date: 2026-12-06 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_issuer_health"
down_revision = "0013_transcript_lines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issuer_sync_outcomes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("issuer", sa.String(length=8), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuer_sync_outcomes")),
    )
    with op.batch_alter_table("issuer_sync_outcomes") as batch:
        batch.create_index("ix_issuer_sync_outcomes_issuer_at", ["issuer", "at"], unique=False)
    op.create_table(
        "issuer_probes",
        sa.Column("issuer", sa.String(length=8), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", name=op.f("pk_issuer_probes")),
    )


def downgrade() -> None:
    op.drop_table("issuer_probes")
    with op.batch_alter_table("issuer_sync_outcomes") as batch:
        batch.drop_index("ix_issuer_sync_outcomes_issuer_at")
    op.drop_table("issuer_sync_outcomes")
