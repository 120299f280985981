"""Offices, their members, the R4 notice and the API rollout (R3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from backend.api.deps import Caller, Services
from backend.api.openapi import error_responses
from backend.api.schemas import (
    Email,
    MemberOut,
    MemberPut,
    NoticeOut,
    OfficeCreate,
    OfficeDetailOut,
    OfficeOut,
    RolloutCreate,
    RolloutOut,
)
from backend.domain.model import Role
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
        OfficeOut.from_domain(office, role)
        for office, role in await offices.list_offices(services, caller)
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
    role = Role.ADMIN
    if not caller.support_admin:
        mine = await offices.list_offices(services, caller)
        role = next((r for o, r in mine if o.id == office_id), Role.READ_ONLY)
    released = await offices.released_issuers(services, caller, office_id)
    return OfficeDetailOut(
        id=office.id,
        name=office.name,
        role=role,
        created_at=office.created_at,
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
    summary="Add a member or change a role",
    description="Office admins only. Members are identified by email address.",
)
async def set_member(
    office_id: str,
    email: Annotated[Email, Path()],
    body: MemberPut,
    services: Services,
    caller: Caller,
) -> MemberOut:
    member = await offices.set_member(services, caller, office_id, email, body.role)
    return MemberOut.from_domain(member)


@router.get(
    "/{office_id}/notices",
    response_model=list[NoticeOut],
    summary="Home-screen notices (R4)",
    description="The orange notice: for each issuer released to the office, the accounts "
    "that can be switched to API now. Empty: nothing to switch, or not released yet.",
)
async def list_notices(office_id: str, services: Services, caller: Caller) -> list[NoticeOut]:
    return [
        NoticeOut(issuer=n.issuer, account_ids=n.account_ids)
        for n in await offices.notices(services, caller, office_id)
    ]


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
