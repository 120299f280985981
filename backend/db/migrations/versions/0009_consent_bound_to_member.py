"""an authorization is bound to the member's browser and to the issuer it was started with

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-01 23:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An authorization started before this revision has no binding: its callback is
    # refused and the member starts again (they live for minutes only).
    with op.batch_alter_table("pending_authorizations") as batch:
        batch.add_column(
            sa.Column(
                "requested_by_admin", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(sa.Column("issuer_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("expected_iss", sa.Text(), nullable=True))
        batch.add_column(sa.Column("sign_in_code_hash", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("sign_in_code_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("sign_in_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("sign_in_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("browser_binding", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_authorizations") as batch:
        for name in (
            "browser_binding",
            "sign_in_used_at",
            "sign_in_attempts",
            "sign_in_code_expires_at",
            "sign_in_code_hash",
            "expected_iss",
            "issuer_url",
            "requested_by_admin",
        ):
            batch.drop_column(name)
