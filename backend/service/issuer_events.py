"""Webhooks from the issuers: new statements, a link revoked, a link about to expire.

The API layer verifies the signature; this handles each event id once only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backend.domain.consent import from_epoch
from backend.domain.model import AccountStatus, ApiLink, Issuer, LinkStatus
from backend.service import events, jobs
from backend.service.consent_expiry import warn_if_due
from backend.service.context import ServiceContext
from backend.service.uow import Repository


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
                    # "expired": the consent reached its end (not stopped by a person).
                    reason=str(data.get("reason") or "")[:64] or None,
                )
            elif event_type == "link.expiring" and (ends := from_epoch(data.get("expires_at"))):
                # The issuer names the end: keep it, and warn now if a warning is due
                # (the periodic check sends the later ones).
                link.consent_expires_at = ends
                await repo.flush()
                await warn_if_due(ctx, repo, link, ctx.clock())
            elif event_type == "link.expiring":
                # No end given: the person can only be told to re-authenticate.
                await events.record(
                    ctx,
                    repo,
                    events.EventType.LINK_NEEDS_REAUTH,
                    office_id=account.office_id,
                    account_id=account.id,
                    reason="expiring",
                    expires_at=data.get("expires_at"),
                )
        if event_type == "link.revoked" and grant_id is not None:
            await _stopped_after_expiry(ctx, repo, issuer, grant_id, data)
        await uow.commit()
        return True


async def _stopped_after_expiry(
    ctx: ServiceContext, repo: Repository, issuer: Issuer, grant_id: str, data: Mapping[str, object]
) -> None:
    """A grant stopped after its tokens died: its link, waiting for re-authentication, is
    revoked too. At Amex that grant held the card until now (R10/R16); the notices stop
    asking for it to be stopped on the member site, and say it was."""
    for link in await repo.expired_links_of_grant(issuer, grant_id):
        account = await repo.get_account(link.account_id, for_update=True)
        link.status = LinkStatus.REVOKED
        link.revoked_at = ctx.clock()
        if account is None or account.status != AccountStatus.NEEDS_REAUTH:
            continue  # deleted, or linked again since: the newer link is the news
        await events.record(
            ctx,
            repo,
            events.EventType.LINK_REVOKED,
            office_id=account.office_id,
            account_id=account.id,
            source="issuer",
            reason=str(data.get("reason") or "")[:64] or None,
        )


def _same_grant(link: ApiLink, grant_id: str | None) -> bool:
    """Whether an event naming ``grant_id`` is about this link.

    A card stopped on the member site and linked again at once gets a new grant; the
    stop's webhook may arrive after that, and must not revoke the new link. Links made
    before grant ids were kept (and events without one) still match by card and ID.
    """
    return grant_id is None or link.issuer_grant_id is None or link.issuer_grant_id == grant_id
