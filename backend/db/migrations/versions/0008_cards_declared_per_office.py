"""cards an office declares for its upload accounts are that office's own rows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:00:00

Before this revision one row per (issuer, card_ref) served every office, and creating
an upload account overwrote it with the caller's values. From now on the shared row is
the issuer's card only; an upload account's card is a row of its office
(``office_id`` set). Existing rows are split: a row the issuer vouched for (an API link,
a legacy or API account, a card related to it) stays the issuer's card; every other
office that reached it only through an upload account gets its own copy, and its
accounts and statements move to that copy.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_CARD_COLUMNS = (
    "issuer",
    "card_ref",
    "product",
    "masked_number",
    "holder_name",
    "role",
    "basic_card_id",
    "successor_id",
)


def upgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("office_id", sa.String(length=32), nullable=True))
        batch.create_foreign_key("fk_cards_office_id_offices", "offices", ["office_id"], ["id"])
        batch.drop_constraint("uq_cards_issuer", type_="unique")
    op.create_index(
        "uq_cards_issuer_card",
        "cards",
        ["issuer", "card_ref"],
        unique=True,
        sqlite_where=sa.text("office_id IS NULL"),
        postgresql_where=sa.text("office_id IS NULL"),
    )
    op.create_index(
        "uq_cards_declared",
        "cards",
        ["office_id", "issuer", "card_ref"],
        unique=True,
        sqlite_where=sa.text("office_id IS NOT NULL"),
        postgresql_where=sa.text("office_id IS NOT NULL"),
    )
    _split_declared_cards(op.get_bind())


def _split_declared_cards(bind: sa.Connection) -> None:
    cards = sa.table(
        "cards", sa.column("id"), sa.column("office_id"), *(sa.column(c) for c in _CARD_COLUMNS)
    )
    accounts = sa.table(
        "accounts",
        sa.column("id"),
        sa.column("office_id"),
        sa.column("card_id"),
        sa.column("sync_method"),
    )
    links = sa.table("api_links", sa.column("card_id"))
    statements = sa.table("statements", sa.column("account_id"), sa.column("card_id"))
    linked = {row[0] for row in bind.execute(sa.select(links.c.card_id))}
    related = {
        ref
        for row in bind.execute(sa.select(cards.c.basic_card_id, cards.c.successor_id))
        for ref in row
        if ref is not None
    }
    uses: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for account_id, office_id, card_id, method in bind.execute(
        sa.select(accounts.c.id, accounts.c.office_id, accounts.c.card_id, accounts.c.sync_method)
    ):
        if card_id is not None:
            uses[card_id].append((account_id, office_id, method))
    for card in bind.execute(sa.select(cards)).mappings().all():
        card_uses = uses.get(card["id"], [])
        vouched = {office for _, office, method in card_uses if method != "upload"}
        by_office: dict[str, list[str]] = defaultdict(list)
        for account_id, office, method in card_uses:
            if method == "upload" and office not in vouched:
                by_office[office].append(account_id)
        if not by_office:
            continue
        offices = sorted(by_office)
        if not (vouched or card["id"] in linked or card["id"] in related):
            # Nobody but these offices' own declarations ever described this row.
            first = offices.pop(0)
            bind.execute(sa.update(cards).where(cards.c.id == card["id"]).values(office_id=first))
        for office in offices:
            copy_id = uuid.uuid4().hex
            values = {c: card[c] for c in _CARD_COLUMNS}
            values.update(basic_card_id=None, successor_id=None)
            bind.execute(sa.insert(cards).values(id=copy_id, office_id=office, **values))
            moved = by_office[office]
            bind.execute(
                sa.update(accounts).where(accounts.c.id.in_(moved)).values(card_id=copy_id)
            )
            bind.execute(
                sa.update(statements)
                .where(statements.c.account_id.in_(moved), statements.c.card_id == card["id"])
                .values(card_id=copy_id)
            )


def downgrade() -> None:
    bind = op.get_bind()
    cards = sa.table(
        "cards",
        sa.column("id"),
        sa.column("office_id"),
        sa.column("issuer"),
        sa.column("card_ref"),
    )
    accounts = sa.table("accounts", sa.column("card_id"))
    statements = sa.table("statements", sa.column("card_id"))
    keep: dict[tuple[str, str], str] = {}
    rows = bind.execute(
        sa.select(cards.c.id, cards.c.office_id, cards.c.issuer, cards.c.card_ref).order_by(
            cards.c.office_id.is_not(None), cards.c.id
        )
    ).all()
    for card_id, _office, issuer, card_ref in rows:
        kept = keep.setdefault((issuer, card_ref), card_id)
        if kept == card_id:
            continue
        # One shared row per issuer id again: the declarations fold into it.
        bind.execute(sa.update(accounts).where(accounts.c.card_id == card_id).values(card_id=kept))
        bind.execute(
            sa.update(statements).where(statements.c.card_id == card_id).values(card_id=kept)
        )
        bind.execute(sa.delete(cards).where(cards.c.id == card_id))
    op.drop_index("uq_cards_declared", table_name="cards")
    op.drop_index("uq_cards_issuer_card", table_name="cards")
    with op.batch_alter_table("cards") as batch:
        batch.drop_constraint("fk_cards_office_id_offices", type_="foreignkey")
        batch.drop_column("office_id")
        batch.create_unique_constraint("uq_cards_issuer", ["issuer", "card_ref"])
