"""Offices, members and the API rollout (R3/R4)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from backend.domain import errors, identity, rules
from backend.domain.model import (
    Account,
    AccountStatus,
    Invitation,
    Issuer,
    LinkStatus,
    Membership,
    Office,
    Role,
    Rollout,
    SyncMethod,
)
from backend.service import access, events
from backend.service.context import Principal, ServiceContext
from backend.service.uow import Repository


@dataclass(frozen=True)
class OfficeEntry:
    """An office as a person picks it: its admins tell apart two offices of one name."""

    office: Office
    role: Role
    admins: tuple[str, ...]


async def list_offices(ctx: ServiceContext, principal: Principal) -> list[OfficeEntry]:
    async with ctx.uow() as uow:
        ids = await access.visible_office_ids(uow.repo, principal)
        offices = await uow.repo.list_offices(ids)
        result = []
        for office in offices:
            role = await access.role_in_office(uow.repo, principal, office.id)
            admins = [m.email for m in await _admins(uow.repo, office.id)]
            # The caller last: the first admin shown is the one that tells offices apart.
            admins.sort(key=lambda email: email == principal.email)
            result.append(OfficeEntry(office, role, tuple(admins)))
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


def _email(email: str) -> str:
    try:
        return identity.normalize_email(email)
    except identity.InvalidIdentity as exc:
        raise errors.InvalidRequest(f"a member is identified by an email address: {exc}") from exc


async def _admins(repo: Repository, office_id: str) -> list[Membership]:
    return [m for m in await repo.members_of_office(office_id) if m.role == Role.ADMIN]


async def _guard_last_admin(repo: Repository, member: Membership, action: str) -> None:
    """An office without an admin could never get one back: its last admin stays."""
    if member.role != Role.ADMIN:
        return
    if len(await _admins(repo, member.office_id)) <= 1:
        raise errors.LastAdmin(
            "the office's last admin cannot be removed or demoted: make another member admin first",
            office_id=member.office_id,
            email=member.email,
            action=action,
        )


async def invite(
    ctx: ServiceContext, principal: Principal, office_id: str, email: str, role: Role
) -> Invitation:
    """Offer a role to an email (office admins only): nothing changes until they accept.

    Inviting again while pending changes the offered role.
    """
    email = _email(email)
    async with ctx.uow() as uow:
        await uow.repo.lock_office(office_id)  # first: see lock_office
        await access.require_office(uow.repo, principal, office_id, Role.ADMIN)
        if await uow.repo.membership(office_id, email) is not None:
            raise errors.AlreadyMember(
                "already a member: change their role instead", office_id=office_id, email=email
            )
        invitation = await uow.repo.invitation(office_id, email)
        if invitation is None:
            invitation = Invitation(
                office_id=office_id,
                email=email,
                role=role,
                invited_by=principal.email,
                created_at=ctx.clock(),
            )
            await uow.repo.add(invitation)
        else:
            invitation.role = role
            invitation.invited_by = principal.email
        await uow.commit()
        return invitation


async def office_invitations(
    ctx: ServiceContext, principal: Principal, office_id: str
) -> list[Invitation]:
    async with ctx.uow() as uow:
        await access.require_office(uow.repo, principal, office_id, Role.ADMIN)
        return await uow.repo.invitations_of_office(office_id)


async def cancel_invitation(
    ctx: ServiceContext, principal: Principal, office_id: str, invitation_id: str
) -> None:
    async with ctx.uow() as uow:
        await access.require_office(uow.repo, principal, office_id, Role.ADMIN)
        invitation = await uow.repo.get_invitation(invitation_id)
        if invitation is None or invitation.office_id != office_id:
            raise errors.NotFound("invitation not found", invitation_id=invitation_id)
        await uow.repo.delete(invitation)
        await uow.commit()


@dataclass(frozen=True)
class InvitationEntry:
    """An invitation as its invitee sees it: which office (told apart by its admins), who."""

    invitation: Invitation
    office: Office
    admins: tuple[str, ...]


async def my_invitations(ctx: ServiceContext, principal: Principal) -> list[InvitationEntry]:
    if principal.support_admin:
        return []
    async with ctx.uow() as uow:
        result = []
        for invitation in await uow.repo.invitations_for(principal.email):
            office = await uow.repo.get_office(invitation.office_id)
            assert office is not None
            admins = tuple(m.email for m in await _admins(uow.repo, office.id))
            result.append(InvitationEntry(invitation, office, admins))
        return result


async def _own_invitation(repo: Repository, principal: Principal, invitation_id: str) -> Invitation:
    invitation = await repo.get_invitation(invitation_id)
    # Another person's invitation does not exist for the caller.
    if invitation is None or principal.support_admin or invitation.email != principal.email:
        raise errors.NotFound("invitation not found", invitation_id=invitation_id)
    return invitation


async def accept_invitation(
    ctx: ServiceContext, principal: Principal, invitation_id: str
) -> Membership:
    """The invitee, signed in as the invited email, becomes a member at the offered role."""
    async with ctx.uow() as uow:
        office_id = (await _own_invitation(uow.repo, principal, invitation_id)).office_id
    async with ctx.uow() as uow:
        # Locked first (see lock_office), then read again: a double accept makes one member.
        await uow.repo.lock_office(office_id)
        invitation = await _own_invitation(uow.repo, principal, invitation_id)
        member = await uow.repo.membership(invitation.office_id, invitation.email)
        if member is None:
            member = Membership(
                office_id=invitation.office_id, email=invitation.email, role=invitation.role
            )
            await uow.repo.add(member)
        await uow.repo.delete(invitation)
        await uow.commit()
        return member


async def decline_invitation(ctx: ServiceContext, principal: Principal, invitation_id: str) -> None:
    async with ctx.uow() as uow:
        invitation = await _own_invitation(uow.repo, principal, invitation_id)
        await uow.repo.delete(invitation)
        await uow.commit()


async def set_role(
    ctx: ServiceContext, principal: Principal, office_id: str, email: str, role: Role
) -> Membership:
    """Change a member's role (office admins only); new members come by invitation."""
    email = _email(email)
    async with ctx.uow() as uow:
        # Locked first: two admins demoting each other at once must not leave it with none.
        await uow.repo.lock_office(office_id)
        await access.require_office(uow.repo, principal, office_id, Role.ADMIN)
        member = await uow.repo.membership(office_id, email)
        if member is None:
            raise errors.NotFound(
                "not a member of this office: invite them first", office_id=office_id, email=email
            )
        if role != Role.ADMIN:
            await _guard_last_admin(uow.repo, member, "demote")
        member.role = role
        await uow.commit()
        return member


async def remove_member(
    ctx: ServiceContext, principal: Principal, office_id: str, email: str
) -> None:
    """An admin removes a member, or a member leaves; their access ends with the commit."""
    email = _email(email)
    async with ctx.uow() as uow:
        leaving = not principal.support_admin and email == principal.email
        await uow.repo.lock_office(office_id)  # first: see lock_office
        await access.require_office(
            uow.repo, principal, office_id, Role.READ_ONLY if leaving else Role.ADMIN
        )
        member = await uow.repo.membership(office_id, email)
        if member is None:
            raise errors.NotFound("not a member of this office", office_id=office_id, email=email)
        await _guard_last_admin(uow.repo, member, "leave" if leaving else "remove")
        await uow.repo.delete(member)
        await uow.commit()


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
    """A home-screen notice.

    ``api_released`` (R4's orange notice): API linking is here for these accounts.
    ``consent_expiring``: the consent of this account's link ends at ``expires_at``;
    shown from the first warning until the consent is renewed.
    ``card_discovered``: a card that appeared under the ID of ``account_ids[0]``,
    offered (``offer``: ``supplementary_card`` or ``register``) until an account of the
    office syncs it.
    ``needs_reauth``: this API account's link needs re-authentication; with
    ``stop_at_member_site`` while the old grant still holds the card at the issuer.
    """

    issuer: Issuer
    account_ids: list[str]
    kind: str = "api_released"
    expires_at: dt.datetime | None = None
    card: dict[str, object] | None = None
    stop_at_member_site: bool = False


# What a card_discovered notice shows of its event's payload.
_DISCOVERED_FIELDS = (
    "card_id",
    "masked_number",
    "holder_name",
    "role",
    "offer",
    "basic_account_id",
    "api_eligible",
)


async def notices(ctx: ServiceContext, principal: Principal, office_id: str) -> list[Notice]:
    async with ctx.uow() as uow:
        await access.role_in_office(uow.repo, principal, office_id)
        result = []
        for rollout in await uow.repo.rollouts_of(office_id):
            issuer = Issuer(rollout.issuer)
            ids = await _switchable_account_ids(uow.repo, office_id, issuer)
            if ids:
                result.append(Notice(issuer=issuer, account_ids=ids))
        for account in await uow.repo.list_accounts(office_id):
            link = await uow.repo.active_link_of_account(account.id)
            if link is not None and link.consent_warned_days is not None:
                result.append(
                    Notice(
                        issuer=link.issuer,
                        account_ids=[account.id],
                        kind="consent_expiring",
                        expires_at=link.consent_expires_at,
                    )
                )
            notice = await _needs_reauth(uow.repo, office_id, account)
            if notice is not None:
                result.append(notice)
        result.extend(await _discovered_cards(uow.repo, office_id))
        return result


async def _needs_reauth(repo: Repository, office_id: str, account: Account) -> Notice | None:
    """An API account whose link ended (expired tokens, or revoked): re-authenticate.

    A new API account waiting for its first consent has no link and is not listed.
    The sync that found the tokens dead asked the issuer whether the old grant still
    holds the card; that answer stands while the link is only expired. A link revoked
    since (stopped on the member site) holds nothing any more.
    """
    if account.sync_method != SyncMethod.API or account.status != AccountStatus.NEEDS_REAUTH:
        return None
    link = await repo.latest_link_of_account(account.id)
    if link is None:
        return None
    held = False
    if link.status == LinkStatus.EXPIRED:
        said = await repo.list_events(
            [office_id],
            account_id=account.id,
            limit=1,
            event_type=events.EventType.LINK_NEEDS_REAUTH,
        )
        held = bool(said and said[0].payload.get("stop_at_member_site"))  # R10/R16
    return Notice(
        issuer=Issuer(account.issuer),
        account_ids=[account.id],
        kind="needs_reauth",
        stop_at_member_site=held,
    )


async def _discovered_cards(repo: Repository, office_id: str) -> list[Notice]:
    """The cards offered by ``card.discovered`` that no account of the office syncs yet:
    nothing is created for them without the person (R15), so the offer stays until then."""
    synced = {a.card_id for a in await repo.list_accounts(office_id) if a.card_id}
    found: dict[str, Notice] = {}
    offered = await repo.list_events(
        [office_id], account_id=None, limit=500, event_type=events.EventType.CARD_DISCOVERED
    )
    for event in reversed(offered):  # oldest first: the first offer of a card is kept
        card_id = str(event.payload.get("card_id") or "")
        if not card_id or card_id in synced or card_id in found or not event.account_id:
            continue
        if event.payload.get("statements_in_account"):
            continue  # R9: the JCB API link already brings its statements, nothing to do
        found[card_id] = Notice(
            issuer=Issuer(str(event.payload.get("issuer") or Issuer.AMEX)),
            account_ids=[event.account_id],
            kind="card_discovered",
            card={k: event.payload.get(k) for k in _DISCOVERED_FIELDS},
        )
    return list(found.values())


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
