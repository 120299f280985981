"""Consents that end: warnings ahead of the end, each once, and the repair that clears them.

An issuer's consent lasts a fixed time (`backend.domain.consent`). renkei learns its
end from the token answers and from the issuer's `link.expiring`, keeps it on the link,
and warns 14, 7 and 1 days ahead with a `link.consent_expiring` event: the outbox
delivers it to the assistant (Slack's office channel, with the button that
re-authenticates in place) and to every subscriber, and the office's notices list the
account until the consent is renewed. A renewal, or a re-authentication after a
failure, records `link.repaired` (see `backend.service.linking`): the new link starts
with no warning sent.
"""

from __future__ import annotations

import datetime as dt

from backend.domain.consent import WARNING_DAYS, days_left, due_warning
from backend.domain.model import ApiLink
from backend.service import events
from backend.service.context import ServiceContext
from backend.service.uow import Repository, UnitOfWork


async def check_consent_expiry(ctx: ServiceContext, uow: UnitOfWork, now: dt.datetime) -> int:
    """Send every consent warning that is due at ``now``; the caller commits.

    Safe to run in several processes at once: each warning is claimed by
    compare-and-set on the link before its event is written.

    Returns:
        How many warnings were recorded.
    """
    horizon = now + dt.timedelta(days=max(WARNING_DAYS))
    sent = 0
    for link in await uow.repo.links_with_consent_ending(horizon):
        if await warn_if_due(ctx, uow.repo, link, now):
            sent += 1
    return sent


async def run_consent_expiry_check(ctx: ServiceContext, now: dt.datetime | None = None) -> int:
    """`check_consent_expiry` in a transaction of its own (the periodic entry point)."""
    async with ctx.uow() as uow:
        sent = await check_consent_expiry(ctx, uow, now or ctx.clock())
        await uow.commit()
    return sent


async def warn_if_due(
    ctx: ServiceContext, repo: Repository, link: ApiLink, now: dt.datetime
) -> bool:
    """Record the warning due for one link, if any and not sent yet."""
    if link.consent_expires_at is None:
        return False
    days = due_warning(link.consent_expires_at, now, link.consent_warned_days)
    if days is None:
        return False
    account = await repo.get_account(link.account_id)
    if account is None or account.is_deleted:
        return False
    if not await repo.claim_consent_warning(link.id, days):
        return False  # another process sent it (or a nearer one) first
    link.consent_warned_days = days
    card = await repo.get_card(link.card_id)
    await events.record(
        ctx,
        repo,
        events.EventType.CONSENT_EXPIRING,
        office_id=account.office_id,
        account_id=account.id,
        issuer=link.issuer.value,
        card=card.masked_number if card else None,
        expires_at=link.consent_expires_at.isoformat(),
        warning_days=days,  # which warning this is: 14, 7 or 1
        days_left=days_left(link.consent_expires_at, now),
        action="reauth",
    )
    return True
