"""the issuer's grant id on each API link

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: links made before this revision keep matching issuer events by card and ID.
    with op.batch_alter_table("api_links") as batch:
        batch.add_column(sa.Column("issuer_grant_id", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_links") as batch:
        batch.drop_column("issuer_grant_id")
