"""invitations an invitee accepts; API tokens with an id, an expiry and a revocation

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "role",
            sa.Enum("admin", "member", "read_only", name="role", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("invited_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["office_id"], ["offices.id"], name=op.f("fk_invitations_office_id_offices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("office_id", "email", name=op.f("uq_invitations_office_id")),
    )
    with op.batch_alter_table("invitations") as batch:
        batch.create_index("ix_invitations_email", ["email"], unique=False)

    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    # Tokens issued before this revision get an id from their hash (the hash of a random
    # token tells nothing of the token) and keep working without an expiry.
    op.execute("UPDATE api_tokens SET id = substr(token_hash, 1, 32) WHERE id IS NULL")
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("id", existing_type=sa.String(length=32), nullable=False)
        batch.create_unique_constraint(op.f("uq_api_tokens_id"), ["id"])
        batch.create_index("ix_api_tokens_email", ["email"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_email")
        batch.drop_constraint(op.f("uq_api_tokens_id"), type_="unique")
        batch.drop_column("revoked_at")
        batch.drop_column("expires_at")
        batch.drop_column("id")
    with op.batch_alter_table("invitations") as batch:
        batch.drop_index("ix_invitations_email")
    op.drop_table("invitations")
