"""The event log: syncs, links, switches, refusals, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import Caller, Services
from backend.api.openapi import error_responses
from backend.api.schemas import EventOut
from backend.service import event_log

router = APIRouter(prefix="/events", tags=["events"], responses=error_responses())


@router.get(
    "",
    response_model=list[EventOut],
    summary="List events",
    description="Events of the offices the caller belongs to, newest first; narrowed to one "
    "office or one account when given. The same events go out as signed webhooks. "
    "`link.needs_reauth` of a sync refused for re-authentication carries "
    "`stop_at_member_site`: true while the old Amex link is still registered and holds "
    "the card (it must be stopped on the member site, 登録情報の変更 → 外部サービスとの連携 "
    "→ the service → 停止する, before re-authenticating), false otherwise and for JCB.",
)
async def list_events(
    services: Services,
    caller: Caller,
    office_id: Annotated[str | None, Query()] = None,
    account_id: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=event_log.MAX_EVENTS)] = 50,
) -> list[EventOut]:
    found = await event_log.list_events(
        services, caller, office_id=office_id, account_id=account_id, limit=limit
    )
    return [EventOut.from_domain(e) for e in found]
