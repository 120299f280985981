"""when each API link's consent ends, and the warning already sent about it

Revision ID: 0014_consent_expiry
Revises: 0016_card_discovery
Create Date: 2026-12-06 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_consent_expiry"
down_revision = "0016_card_discovery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: a link made before this revision learns its end at its next token
    # refresh or the issuer's `link.expiring`.
    with op.batch_alter_table("api_links") as batch:
        batch.add_column(sa.Column("consent_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("consent_warned_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_links") as batch:
        batch.drop_column("consent_warned_days")
        batch.drop_column("consent_expires_at")
