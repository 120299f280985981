"""Recording events: each lands in the outbox in the same transaction as its cause."""

from __future__ import annotations

from backend.domain.model import Event
from backend.domain.vocabulary import EventType as EventType
from backend.service.context import ServiceContext
from backend.service.uow import Repository


async def record(
    ctx: ServiceContext,
    repo: Repository,
    event_type: EventType,
    *,
    office_id: str | None,
    account_id: str | None = None,
    **payload: object,
) -> Event:
    event = Event(
        type=event_type.value,
        payload={**payload, "office_id": office_id, "account_id": account_id},
        office_id=office_id,
        account_id=account_id,
        created_at=ctx.clock(),
    )
    await repo.add_event(event, ctx.webhook_urls, ctx.clock())
    return event
