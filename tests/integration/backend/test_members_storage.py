"""Two admins demoting or removing each other at the same moment leave the office an admin."""

from __future__ import annotations

import asyncio

from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db.repository import SqlUnitOfWork
from backend.domain import errors
from backend.domain.model import Role
from backend.secrets import FernetSecretBox
from backend.service import offices
from backend.service.context import Principal, ServiceContext

ANNA, BOB = Principal("anna@example.com"), Principal("bob@example.com")


def context(sessions: async_sessionmaker[AsyncSession]) -> ServiceContext:
    return ServiceContext(
        uow=lambda: SqlUnitOfWork(sessions),
        gateways={},
        secrets=FernetSecretBox([Fernet.generate_key().decode()]),
        oauth_redirect_uri="http://test/callback",
    )


async def _two_admins(ctx: ServiceContext) -> str:
    office = await offices.create_office(ctx, ANNA, "Yamada")
    invitation = await offices.invite(ctx, ANNA, office.id, BOB.email, Role.ADMIN)
    await offices.accept_invitation(ctx, BOB, invitation.id)
    return office.id


async def _admins(ctx: ServiceContext, office_id: str) -> list[str]:
    members = await offices.list_members(ctx, Principal("x", support_admin=True), office_id)
    return [m.email for m in members if m.role == Role.ADMIN]


async def test_two_admins_demoting_each_other_at_once_leave_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ctx = context(sessions)
    for _ in range(3):
        office_id = await _two_admins(ctx)
        results = await asyncio.gather(
            offices.set_role(ctx, ANNA, office_id, BOB.email, Role.MEMBER),
            offices.set_role(ctx, BOB, office_id, ANNA.email, Role.MEMBER),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(refused) == 1, results
        assert isinstance(refused[0], errors.LastAdmin | errors.Forbidden), refused
        assert len(await _admins(ctx, office_id)) == 1


async def test_two_admins_leaving_at_once_leave_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ctx = context(sessions)
    office_id = await _two_admins(ctx)
    results = await asyncio.gather(
        offices.remove_member(ctx, ANNA, office_id, ANNA.email),
        offices.remove_member(ctx, BOB, office_id, BOB.email),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], errors.LastAdmin), results
    assert len(await _admins(ctx, office_id)) == 1


async def test_accepting_twice_at_once_makes_one_member(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ctx = context(sessions)
    office = await offices.create_office(ctx, ANNA, "Yamada")
    invitation = await offices.invite(ctx, ANNA, office.id, BOB.email, Role.MEMBER)
    results = await asyncio.gather(
        offices.accept_invitation(ctx, BOB, invitation.id),
        offices.accept_invitation(ctx, BOB, invitation.id),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, errors.NotFound) for r in refused), results
    members = await offices.list_members(ctx, ANNA, office.id)
    assert [m.email for m in members] == [ANNA.email, BOB.email]
