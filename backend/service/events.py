"""Recording events: each lands in the outbox in the same transaction as its cause."""

from __future__ import annotations

from enum import StrEnum

from backend.domain.model import Event
from backend.service.context import ServiceContext
from backend.service.uow import Repository


class EventType(StrEnum):
    SYNC_COMPLETED = "sync.completed"
    SYNC_FAILED = "sync.failed"
    LINK_CREATED = "link.created"
    LINK_NEEDS_REAUTH = "link.needs_reauth"
    LINK_REVOKED = "link.revoked"
    API_RELEASED = "office.api_released"
    ACCOUNT_CREATED = "account.created"
    ACCOUNT_DELETED = "account.deleted"
    CARD_CHANGED = "card.changed"
    AUTHORIZATION_FAILED = "authorization.failed"
    STATEMENTS_UPLOADED = "statements.uploaded"


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
