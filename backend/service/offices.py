"""Offices, members and the API rollout (R3/R4)."""

from __future__ import annotations

from dataclasses import dataclass

from backend.domain import errors, identity, rules
from backend.domain.model import (
    Issuer,
    Membership,
    Office,
    Role,
    Rollout,
    SyncMethod,
)
from backend.service import access, events
from backend.service.context import Principal, ServiceContext
from backend.service.uow import Repository


async def list_offices(ctx: ServiceContext, principal: Principal) -> list[tuple[Office, Role]]:
    async with ctx.uow() as uow:
        ids = await access.visible_office_ids(uow.repo, principal)
        offices = await uow.repo.list_offices(ids)
        result = []
        for office in offices:
            role = await access.role_in_office(uow.repo, principal, office.id)
            result.append((office, role))
        return result


async def get_office(ctx: ServiceContext, principal: Principal, office_id: str) -> Office:
    async with ctx.uow() as uow:
        await access.role_in_office(uow.repo, principal, office_id)
        office = await uow.repo.get_office(office_id)
        assert office is not None
        return office


async def create_office(ctx: ServiceContext, principal: Principal, name: str) -> Office:
    """A new office; its creator becomes its admin."""
    try:
        name = identity.normalize_name(name)
    except identity.InvalidIdentity as exc:
        raise errors.InvalidRequest(f"office name: {exc}") from exc
    if not name:
        raise errors.InvalidRequest("office name is empty")
    async with ctx.uow() as uow:
        office = Office(name=name, created_at=ctx.clock())
        await uow.repo.add(office)
        await uow.repo.flush()
        await uow.repo.add(Membership(office_id=office.id, email=principal.email, role=Role.ADMIN))
        await uow.commit()
        return office


async def list_members(
    ctx: ServiceContext, principal: Principal, office_id: str
) -> list[Membership]:
    async with ctx.uow() as uow:
        await access.role_in_office(uow.repo, principal, office_id)
        return await uow.repo.members_of_office(office_id)


async def set_member(
    ctx: ServiceContext, principal: Principal, office_id: str, email: str, role: Role
) -> Membership:
    """Add a member or change their role (office admins only)."""
    try:
        email = identity.normalize_email(email)
    except identity.InvalidIdentity as exc:
        raise errors.InvalidRequest(f"a member is identified by an email address: {exc}") from exc
    async with ctx.uow() as uow:
        await access.require_office(uow.repo, principal, office_id, Role.ADMIN)
        for member in await uow.repo.members_of_office(office_id):
            if member.email == email:
                member.role = role
                await uow.commit()
                return member
        member = Membership(office_id=office_id, email=email, role=role)
        await uow.repo.add(member)
        await uow.commit()
        return member


async def released_issuers(
    ctx: ServiceContext, principal: Principal, office_id: str
) -> list[Issuer]:
    async with ctx.uow() as uow:
        await access.role_in_office(uow.repo, principal, office_id)
        return [Issuer(r.issuer) for r in await uow.repo.rollouts_of(office_id)]


async def release_api(
    ctx: ServiceContext, principal: Principal, office_id: str, issuer: Issuer
) -> Rollout:
    """R3: the operator releases API linking to an office; R4: its notice goes out."""
    if not principal.support_admin:
        raise errors.Forbidden("only support administrators release API linking")
    async with ctx.uow() as uow:
        if await uow.repo.get_office(office_id) is None:
            raise errors.NotFound("office not found", office_id=office_id)
        for rollout in await uow.repo.rollouts_of(office_id):
            if rollout.issuer == issuer:
                return rollout
        rollout = Rollout(office_id=office_id, issuer=issuer, released_at=ctx.clock())
        await uow.repo.add(rollout)
        await uow.repo.flush()
        eligible = await _switchable_account_ids(uow.repo, office_id, issuer)
        await events.record(
            ctx,
            uow.repo,
            events.EventType.API_RELEASED,
            office_id=office_id,
            issuer=issuer.value,
            switchable_account_ids=eligible,
        )
        await uow.commit()
        return rollout


@dataclass(frozen=True)
class Notice:
    """R4: the home screen's orange notice: API linking is here for these accounts."""

    issuer: Issuer
    account_ids: list[str]


async def notices(ctx: ServiceContext, principal: Principal, office_id: str) -> list[Notice]:
    async with ctx.uow() as uow:
        await access.role_in_office(uow.repo, principal, office_id)
        result = []
        for rollout in await uow.repo.rollouts_of(office_id):
            issuer = Issuer(rollout.issuer)
            ids = await _switchable_account_ids(uow.repo, office_id, issuer)
            if ids:
                result.append(Notice(issuer=issuer, account_ids=ids))
        return result


async def _switchable_account_ids(repo: Repository, office_id: str, issuer: Issuer) -> list[str]:
    ids = []
    for account in await repo.list_accounts(office_id):
        if account.issuer != issuer or account.sync_method == SyncMethod.API:
            continue
        card = await repo.get_card(account.card_id) if account.card_id else None
        if card is None:
            continue
        try:
            rules.ensure_card_eligible(card)  # R1
        except errors.CardNotEligible:
            continue
        ids.append(account.id)
    return ids
