"""Revision 0008 on a database from before it: shared card rows that upload accounts wrote
are split per office, and the issuer's card keeps the offices the issuer vouched for."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backend.db.engine import make_engine, migrate
from tests.support.databases import downgrade_to

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _seed(connection: Connection) -> None:
    """What main's shared rows looked like after office B re-declared office A's card."""
    for office in ("A", "B", "C"):
        connection.execute(
            sa.text("INSERT INTO offices (id, name, created_at) VALUES (:i, :i, :t)"),
            {"i": office, "t": NOW},
        )
    card = (
        "INSERT INTO cards (id, issuer, card_ref, product, masked_number, holder_name, role)"
        " VALUES (:i, 'amex', :r, :p, 'XXXX-XXXXXX-66666', 'MALLORY', 'basic')"
    )
    connection.execute(sa.text(card), {"i": "shared", "r": "amex-1", "p": "amex_business"})
    connection.execute(sa.text(card), {"i": "uploads", "r": "amex-2", "p": "amex_business"})
    account = (
        "INSERT INTO accounts (id, office_id, name, issuer, card_id, sync_method, status,"
        " created_at) VALUES (:i, :o, :i, 'amex', :c, :m, 'active', :t)"
    )
    for account_id, office, card_id, method in (
        ("a-legacy", "A", "shared", "legacy"),
        ("b-upload", "B", "shared", "upload"),
        ("b-upload-2", "B", "uploads", "upload"),
        ("c-upload-2", "C", "uploads", "upload"),
    ):
        connection.execute(
            sa.text(account), {"i": account_id, "o": office, "c": card_id, "m": method, "t": NOW}
        )
    connection.execute(
        sa.text(
            "INSERT INTO statements (id, account_id, card_id, use_date, merchant, amount_jpy,"
            " status, source, created_at, updated_at) VALUES"
            " ('s-b', 'b-upload', 'shared', :d, 'shop', 100, 'confirmed', 'upload', :t, :t),"
            " ('s-a', 'a-legacy', 'shared', :d, 'shop', 100, 'confirmed', 'legacy', :t, :t)"
        ),
        {"d": dt.date(2026, 10, 1), "t": NOW},
    )


def _state(connection: Connection) -> dict[str, tuple[str | None, str, str]]:
    """account → (its card's office, card ref, card id)."""
    rows = connection.execute(
        sa.text(
            "SELECT a.id, c.office_id, c.card_ref, c.id FROM accounts a"
            " JOIN cards c ON c.id = a.card_id"
        )
    ).all()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def test_shared_rows_are_split_per_office_and_folded_back(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrate(engine, "0007")
        async with engine.begin() as connection:
            await connection.run_sync(_seed)
        # With rows pointing at the cards, as in a database in use.
        await migrate(engine, "0008")
        async with engine.begin() as connection:
            state = await connection.run_sync(_state)
            rows = await connection.execute(sa.text("SELECT id, card_id FROM statements"))
            statements: dict[str, str] = {row[0]: row[1] for row in rows}
        # The issuer vouched for amex-1 in office A (a legacy account): that row stays the
        # issuer's card; office B's upload account gets a declaration of its own.
        assert state["a-legacy"] == (None, "amex-1", "shared")
        office, ref, b_card = state["b-upload"]
        assert (office, ref) == ("B", "amex-1") and b_card != "shared"
        assert statements == {"s-a": "shared", "s-b": b_card}
        # amex-2 was only ever declared: each office keeps its own row.
        assert state["b-upload-2"][:2] == ("B", "amex-2")
        assert state["c-upload-2"][:2] == ("C", "amex-2")
        assert state["b-upload-2"][2] != state["c-upload-2"][2]
        async with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                await connection.commit()
            async with connection.begin():
                await connection.run_sync(downgrade_to, "0007")
                folded = [
                    tuple(row)
                    for row in await connection.execute(
                        sa.text(
                            "SELECT c.card_ref, c.id, COUNT(a.id) FROM cards c"
                            " JOIN accounts a ON a.card_id = c.id GROUP BY c.card_ref, c.id"
                            " ORDER BY c.card_ref"
                        )
                    )
                ]
        await migrate(engine)
        # One row per issuer id again (the issuer's card where there was one), every
        # account on it.
        assert [(ref, count) for ref, _, count in folded] == [("amex-1", 2), ("amex-2", 2)]
        assert folded[0][1] == "shared"
    finally:
        await engine.dispose()
