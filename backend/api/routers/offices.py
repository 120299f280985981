"""Offices, their members, the R4 notice and the API rollout (R3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from backend.api.deps import Caller, Services
from backend.api.openapi import error_responses
from backend.api.schemas import (
    Email,
    InvitationCreate,
    InvitationOut,
    IssuerInfoOut,
    MemberOut,
    MemberPut,
    NoticeOut,
    OfficeCreate,
    OfficeDetailOut,
    OfficeOut,
    RolloutCreate,
    RolloutOut,
)
from backend.domain.model import Invitation, Role
from backend.service import offices

router = APIRouter(prefix="/offices", tags=["offices"], responses=error_responses())


@router.get(
    "",
    response_model=list[OfficeOut],
    summary="List offices",
    description="The offices the caller belongs to, with the caller's role in each "
    "(every office for a support administrator).",
)
async def list_offices(services: Services, caller: Caller) -> list[OfficeOut]:
    return [
        OfficeOut.from_domain(e.office, e.role, e.admins)
        for e in await offices.list_offices(services, caller)
    ]


@router.post(
    "",
    response_model=OfficeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create an office",
    description="A new office; its creator becomes its admin.",
)
async def create_office(body: OfficeCreate, services: Services, caller: Caller) -> OfficeOut:
    office = await offices.create_office(services, caller, body.name)
    return OfficeOut.from_domain(office, Role.ADMIN)


@router.get(
    "/{office_id}",
    response_model=OfficeDetailOut,
    summary="Get an office",
    description="One office, the caller's role and the issuers released to it (R3/R4).",
)
async def get_office(office_id: str, services: Services, caller: Caller) -> OfficeDetailOut:
    office = await offices.get_office(services, caller, office_id)
    # The service answers no role with one office; a member has few offices to scan.
    mine = await offices.list_offices(services, caller)
    entry = next((e for e in mine if e.office.id == office_id), None)
    role = Role.ADMIN if caller.support_admin else entry.role if entry else Role.READ_ONLY
    released = await offices.released_issuers(services, caller, office_id)
    return OfficeDetailOut(
        id=office.id,
        name=office.name,
        role=role,
        created_at=office.created_at,
        admins=list(entry.admins) if entry else [],
        released_issuers=released,
    )


@router.get(
    "/{office_id}/members",
    response_model=list[MemberOut],
    summary="List members",
    description="Every member of the office and their role.",
)
async def list_members(office_id: str, services: Services, caller: Caller) -> list[MemberOut]:
    return [
        MemberOut.from_domain(m) for m in await offices.list_members(services, caller, office_id)
    ]


@router.put(
    "/{office_id}/members/{email}",
    response_model=MemberOut,
    summary="Change a member's role",
    description="Office admins only. A new member comes by invitation (`POST "
    "/offices/{office_id}/invitations`); an email that is not a member answers 404. "
    "The office's last admin cannot be demoted (409 `last_admin`).",
)
async def set_member(
    office_id: str,
    email: Annotated[Email, Path()],
    body: MemberPut,
    services: Services,
    caller: Caller,
) -> MemberOut:
    member = await offices.set_role(services, caller, office_id, email, body.role)
    return MemberOut.from_domain(member)


@router.delete(
    "/{office_id}/members/{email}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a member, or leave",
    description="Office admins remove any member; any member may remove themselves "
    "(leave). Access ends at once. The office's last admin cannot leave or be removed "
    "(409 `last_admin`).",
)
async def remove_member(office_id: str, email: str, services: Services, caller: Caller) -> None:
    await offices.remove_member(services, caller, office_id, email)


async def _invitation_out(
    services: Services, caller: Caller, invitation: Invitation
) -> InvitationOut:
    office = await offices.get_office(services, caller, invitation.office_id)
    mine = await offices.list_offices(services, caller)
    entry = next((e for e in mine if e.office.id == office.id), None)
    return InvitationOut.from_domain(invitation, office, entry.admins if entry else ())


@router.post(
    "/{office_id}/invitations",
    response_model=InvitationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Invite a person",
    description="Office admins only. The invitee becomes a member only when they accept, "
    "signed in as the invited email (`POST /invitations/{id}/accept`); until then the "
    "office is not theirs to see. Inviting again while pending changes the offered role; "
    "inviting a member answers 409 `already_member`.",
)
async def invite(
    office_id: str, body: InvitationCreate, services: Services, caller: Caller
) -> InvitationOut:
    invitation = await offices.invite(services, caller, office_id, body.email, body.role)
    return await _invitation_out(services, caller, invitation)


@router.get(
    "/{office_id}/invitations",
    response_model=list[InvitationOut],
    summary="Pending invitations of an office",
    description="Office admins only.",
)
async def office_invitations(
    office_id: str, services: Services, caller: Caller
) -> list[InvitationOut]:
    return [
        await _invitation_out(services, caller, i)
        for i in await offices.office_invitations(services, caller, office_id)
    ]


@router.delete(
    "/{office_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Cancel an invitation",
    description="Office admins only.",
)
async def cancel_invitation(
    office_id: str, invitation_id: str, services: Services, caller: Caller
) -> None:
    await offices.cancel_invitation(services, caller, office_id, invitation_id)


invitations_router = APIRouter(
    prefix="/invitations", tags=["invitations"], responses=error_responses()
)


@invitations_router.get(
    "",
    response_model=list[InvitationOut],
    summary="My invitations",
    description="The invitations waiting for the caller's own email, each with the office's "
    "name and admins and who invited.",
)
async def my_invitations(services: Services, caller: Caller) -> list[InvitationOut]:
    return [
        InvitationOut.from_domain(e.invitation, e.office, e.admins)
        for e in await offices.my_invitations(services, caller)
    ]


@invitations_router.post(
    "/{invitation_id}/accept",
    response_model=MemberOut,
    summary="Accept an invitation",
    description="Only the invited person (their own token, or the assistant acting as "
    "them). The caller becomes a member at the offered role.",
)
async def accept_invitation(invitation_id: str, services: Services, caller: Caller) -> MemberOut:
    return MemberOut.from_domain(await offices.accept_invitation(services, caller, invitation_id))


@invitations_router.post(
    "/{invitation_id}/decline",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Decline an invitation",
    description="Only the invited person. The invitation is gone; nothing was granted.",
)
async def decline_invitation(invitation_id: str, services: Services, caller: Caller) -> None:
    await offices.decline_invitation(services, caller, invitation_id)


@router.get(
    "/{office_id}/notices",
    response_model=list[NoticeOut],
    summary="Home-screen notices (R4, consents ending, re-authentication)",
    description="The orange notice (`api_released`): for each issuer released to the "
    "office, the accounts that can be switched to API now. `consent_expiring`: an account "
    "whose consent ends soon (from the first warning, 14 days ahead, until it is renewed by "
    "re-authenticating). `card_discovered`: a card that appeared under a linked ID, "
    "offered until an account of the office syncs it. `needs_reauth`: an API account "
    "whose link needs re-authentication; `stop_at_member_site` (with `member_site_url`) "
    "when the old link still holds the card at Amex and must first be stopped on the "
    "member site. Empty: nothing to say.",
)
async def list_notices(
    office_id: str, request: Request, services: Services, caller: Caller
) -> list[NoticeOut]:
    # An app without the issuers' sites (a bare API) still lists the notices.
    sites: Mapping[str, IssuerInfoOut] = getattr(request.app.state, "issuer_sites", {})
    return [
        NoticeOut.model_validate(
            {
                "issuer": n.issuer,
                "account_ids": n.account_ids,
                "kind": n.kind,
                "expires_at": n.expires_at,
                "card": n.card,
                "stop_at_member_site": n.stop_at_member_site,
                "member_site_url": _stop_page(sites, n.issuer) if n.stop_at_member_site else None,
            }
        )
        for n in await offices.notices(services, caller, office_id)
    ]


def _stop_page(sites: Mapping[str, IssuerInfoOut], issuer: str) -> str | None:
    """Where a link is stopped on the issuer's member site (R16), or its login page."""
    site = sites.get(issuer)
    return (site.external_services_url or site.member_site_url) if site else None


@router.post(
    "/{office_id}/rollouts",
    response_model=RolloutOut,
    status_code=status.HTTP_201_CREATED,
    summary="Release API linking to an office (R3)",
    description="Support administrators only. Idempotent: releasing again answers the "
    "existing rollout. Members of the office then see the R4 notice.",
)
async def release_api(
    office_id: str, body: RolloutCreate, services: Services, caller: Caller
) -> RolloutOut:
    rollout = await offices.release_api(services, caller, office_id, body.issuer)
    return RolloutOut.from_domain(rollout)
