"""cards that appear: the issuer's cards each account's ID was reported with

Revision ID: 0016_card_discovery
Revises: 0015_issuer_health
Create Date: 2026-12-06 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_card_discovery"
down_revision = "0015_issuer_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty at first: each account's next report of its cards is its baseline, so an
    # existing installation is not offered every card it already knew.
    op.create_table(
        "account_seen_cards",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("card_id", sa.String(length=32), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_seen_cards_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_account_seen_cards_card_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["office_id"], ["offices.id"], name=op.f("fk_account_seen_cards_office_id_offices")
        ),
        sa.PrimaryKeyConstraint("account_id", "card_id", name=op.f("pk_account_seen_cards")),
    )
    with op.batch_alter_table("account_seen_cards") as batch:
        batch.create_index(
            "ix_account_seen_cards_office_card", ["office_id", "card_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("account_seen_cards") as batch:
        batch.drop_index("ix_account_seen_cards_office_card")
    op.drop_table("account_seen_cards")
