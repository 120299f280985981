"""Webhooks from the issuers: new statements, a link revoked, a link about to expire.

The API layer verifies the signature; this handles each event id once only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backend.domain.model import AccountStatus, ApiLink, Issuer, LinkStatus
from backend.service import events, jobs
from backend.service.context import ServiceContext


async def handle_issuer_event(
    ctx: ServiceContext, issuer: Issuer, event_id: str, event_type: str, data: Mapping[str, object]
) -> bool:
    """Apply one issuer event; False when the event id was seen before (a replay)."""
    subject = str(data.get("grant_subject") or "")
    raw_refs = data.get("card_ids") or []
    card_refs: Sequence[str] = [str(r) for r in raw_refs] if isinstance(raw_refs, list) else []
    grant_id = str(data.get("grant_id") or "") or None
    async with ctx.uow() as uow:
        repo = uow.repo
        if not await repo.remember_issuer_event(event_id, issuer.value, ctx.clock()):
            return False
        links = list(await repo.active_links_for_subject(issuer, subject)) if subject else []
        for card in await repo.cards_by_refs(issuer, list(card_refs)):
            for link in await repo.active_links_for_card(card.id):
                if link not in links:
                    links.append(link)
        for link in links:
            if not _same_grant(link, grant_id):
                continue
            account = await repo.get_account(link.account_id, for_update=True)
            if account is None or account.is_deleted:
                continue
            if event_type == "statements.available":
                await jobs.enqueue_sync(ctx, repo, account.id)
            elif event_type == "link.revoked":
                link.status = LinkStatus.REVOKED
                link.revoked_at = ctx.clock()
                account.status = AccountStatus.NEEDS_REAUTH
                await events.record(
                    ctx,
                    repo,
                    events.EventType.LINK_REVOKED,
                    office_id=account.office_id,
                    account_id=account.id,
                    source="issuer",
                )
            elif event_type == "link.expiring":
                await events.record(
                    ctx,
                    repo,
                    events.EventType.LINK_NEEDS_REAUTH,
                    office_id=account.office_id,
                    account_id=account.id,
                    reason="expiring",
                    expires_at=data.get("expires_at"),
                )
        await uow.commit()
        return True


def _same_grant(link: ApiLink, grant_id: str | None) -> bool:
    """Whether an event naming ``grant_id`` is about this link.

    A card stopped on the member site and linked again at once gets a new grant; the
    stop's webhook may arrive after that, and must not revoke the new link. Links made
    before grant ids were kept (and events without one) still match by card and ID.
    """
    return grant_id is None or link.issuer_grant_id is None or link.issuer_grant_id == grant_id
