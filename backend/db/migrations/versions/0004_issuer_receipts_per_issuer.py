"""issuer webhook receipts keyed by issuer and event id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Receipts only guard against replays within the signature's five-minute window:
    # starting the new table empty loses nothing that matters.
    op.drop_table("issuer_webhook_receipts")
    op.create_table(
        "issuer_webhook_receipts",
        sa.Column("issuer", sa.String(length=8), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "event_id", name=op.f("pk_issuer_webhook_receipts")),
    )


def downgrade() -> None:
    op.drop_table("issuer_webhook_receipts")
    op.create_table(
        "issuer_webhook_receipts",
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("issuer", sa.String(length=8), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_issuer_webhook_receipts")),
    )
