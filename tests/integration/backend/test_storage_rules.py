"""Rules backed by the database itself: R5 and R6 hold under concurrency (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db.repository import SqlUnitOfWork
from backend.domain import errors
from backend.domain.model import (
    Account,
    ApiLink,
    Card,
    Issuer,
    LinkStatus,
    Office,
    SyncMethod,
)


async def _office_with_card_accounts(
    sessions: async_sessionmaker[AsyncSession], issuer: Issuer, count: int
) -> tuple[Card, list[Account]]:
    async with SqlUnitOfWork(sessions) as uow:
        card = Card(issuer, f"{issuer}-card", f"{issuer}_business_gold", "XXXX-1", "YAMADA")
        await uow.repo.add(card)
        await uow.repo.flush()
        accounts = []
        for i in range(count):
            office = Office(name=f"office {i}")
            await uow.repo.add(office)
            await uow.repo.flush()
            account = Account(office.id, f"acct {i}", issuer, card.id, SyncMethod.LEGACY)
            await uow.repo.add(account)
            accounts.append(account)
        await uow.repo.flush()
        await uow.commit()
        return card, accounts


async def _try_link(
    sessions: async_sessionmaker[AsyncSession],
    account: Account,
    card: Card,
    subject: str,
    both_checked: asyncio.Barrier,
) -> str:
    async with SqlUnitOfWork(sessions) as uow:
        # Both transactions look first and see no link, as a naive check-then-insert would.
        seen = await uow.repo.active_links_for_card(card.id)
        await both_checked.wait()
        if seen:
            return "saw-link"
        link = ApiLink(account.id, account.office_id, card.issuer, card.id, subject, b"sealed")
        try:
            await uow.repo.add_link(link)
            await uow.commit()
        except errors.RuleViolation as exc:
            return exc.code
        except Exception as exc:  # SQLite may answer "database is locked" to the loser
            return type(exc).__name__
        return "linked"


async def test_r5_two_concurrent_links_for_one_amex_card_give_exactly_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    card, (first, second) = await _office_with_card_accounts(sessions, Issuer.AMEX, 2)
    barrier = asyncio.Barrier(2)
    outcomes = await asyncio.gather(
        _try_link(sessions, first, card, "user_good", barrier),
        _try_link(sessions, second, card, "user_good", barrier),
    )
    assert sorted(outcomes) == ["card_already_linked", "linked"], outcomes
    async with SqlUnitOfWork(sessions) as uow:
        active = await uow.repo.active_links_for_card(card.id)
    assert len(active) == 1


async def test_r5_refusal_cites_the_rule(sessions: async_sessionmaker[AsyncSession]) -> None:
    card, (first, second) = await _office_with_card_accounts(sessions, Issuer.AMEX, 2)
    async with SqlUnitOfWork(sessions) as uow:
        await uow.repo.add_link(ApiLink(first.id, first.office_id, Issuer.AMEX, card.id, "u", b"x"))
        await uow.commit()
    async with SqlUnitOfWork(sessions) as uow:
        with pytest.raises(errors.CardAlreadyLinked) as info:
            await uow.repo.add_link(
                ApiLink(second.id, second.office_id, Issuer.AMEX, card.id, "u", b"x")
            )
    assert info.value.code == "card_already_linked"


async def test_r5_a_revoked_link_frees_the_card(sessions: async_sessionmaker[AsyncSession]) -> None:
    card, (first, second) = await _office_with_card_accounts(sessions, Issuer.AMEX, 2)
    async with SqlUnitOfWork(sessions) as uow:
        old = ApiLink(first.id, first.office_id, Issuer.AMEX, card.id, "u", b"x")
        await uow.repo.add_link(old)
        await uow.commit()
    async with SqlUnitOfWork(sessions) as uow:
        stored = await uow.repo.active_link_of_account(first.id)
        assert stored is not None
        stored.status = LinkStatus.REVOKED  # R16: stopped on the member site
        await uow.commit()
    async with SqlUnitOfWork(sessions) as uow:
        await uow.repo.add_link(
            ApiLink(second.id, second.office_id, Issuer.AMEX, card.id, "u", b"x")
        )
        await uow.commit()
        assert [link.account_id for link in await uow.repo.active_links_for_card(card.id)] == [
            second.id
        ]


async def test_r6_one_account_per_myjcb_id(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with SqlUnitOfWork(sessions) as uow:
        cards = []
        for i in range(2):
            card = Card(Issuer.JCB, f"jcb-{i}", "jcb_gold", f"XXXX-{i}", "山田")
            await uow.repo.add(card)
            cards.append(card)
        office = Office(name="o")
        await uow.repo.add(office)
        await uow.repo.flush()
        accounts = [Account(office.id, "a", Issuer.JCB, c.id, SyncMethod.API) for c in cards]
        for account in accounts:
            await uow.repo.add(account)
        await uow.repo.flush()
        await uow.repo.add_link(
            ApiLink(accounts[0].id, office.id, Issuer.JCB, cards[0].id, "myjcb-1", b"x")
        )
        await uow.commit()
    async with SqlUnitOfWork(sessions) as uow:
        with pytest.raises(errors.MyJcbIdAlreadyLinked):
            await uow.repo.add_link(
                ApiLink(accounts[1].id, office.id, Issuer.JCB, cards[1].id, "myjcb-1", b"x")
            )


async def test_jcb_cards_are_not_limited_by_r5(sessions: async_sessionmaker[AsyncSession]) -> None:
    """R5 is an Amex rule: a JCB card's uniqueness comes from its MyJCB ID (R6) instead."""
    card, (first, second) = await _office_with_card_accounts(sessions, Issuer.JCB, 2)
    async with SqlUnitOfWork(sessions) as uow:
        await uow.repo.add_link(
            ApiLink(first.id, first.office_id, Issuer.JCB, card.id, "id-a", b"x")
        )
        await uow.repo.add_link(
            ApiLink(second.id, second.office_id, Issuer.JCB, card.id, "id-b", b"x")
        )
        await uow.commit()
        assert len(await uow.repo.active_links_for_card(card.id)) == 2


async def test_migrations_match_the_tables(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A model change without its Alembic revision fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from backend.db.tables import metadata

    def renkeis_own(name: str | None, kind: str, parent: object) -> bool:
        # Procrastinate's schema (PostgreSQL only) is applied by a revision from its own
        # SQL, not described by renkei's tables: its objects are not renkei's to compare.
        if kind == "table":
            return not (name or "").startswith("procrastinate_")
        return True

    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(
            connection,  # type: ignore[arg-type]
            opts={"include_name": renkeis_own},
        )
        return list(compare_metadata(context, metadata))

    async with sessions() as session:
        connection = await session.connection()
        changes = await connection.run_sync(diff)
    assert changes == []
