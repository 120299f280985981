"""Sync: incremental by cursor for API links, whole fetch for legacy logins.

Each API page and the cursor after it are committed in one transaction, so a crash
mid-sync resumes from the last committed page: nothing lost, nothing doubled.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from backend.domain import rules
from backend.domain.model import (
    Account,
    AccountStatus,
    ApiLink,
    Card,
    Issuer,
    LinkStatus,
    StatementSource,
    SyncMethod,
    SyncRun,
)
from backend.service import card_discovery, events, issuer_health
from backend.service.accounts import stopped_at_issuer, upsert_card
from backend.service.context import ServiceContext
from backend.service.ingest import IngestCounts, ingest_api_lines, ingest_batch
from backend.service.ports import (
    BadPayload,
    ConsentRevoked,
    GrantInfo,
    InvalidCursor,
    IssuerCard,
    IssuerError,
    IssuerStatement,
    IssuerUnavailable,
    LegacyLoginFailed,
    RateLimited,
    ReauthRequired,
    TokenSet,
)
from backend.service.tokens import load_tokens, saver_for
from backend.service.uow import Repository

log = logging.getLogger(__name__)

PAGE_SIZE = 500


class RetryLater(Exception):
    """The issuer is busy or down: the job runner tries again after ``delay`` seconds."""

    def __init__(self, delay: float, code: str) -> None:
        super().__init__(code)
        self.delay = delay
        self.code = code


class InternalSyncError(IssuerError):
    """Not the issuer's fault: recorded so that the account never stays shown as syncing."""

    code = "internal_error"


@dataclass(frozen=True)
class SyncResult:
    account_id: str
    status: str  # succeeded | failed | skipped | already_running
    added: int = 0
    modified: int = 0
    removed: int = 0
    error_code: str | None = None
    job_id: int | None = None  # the queued sync this request carried out


async def sync_account(
    ctx: ServiceContext, account_id: str, *, requested: bool = False
) -> SyncResult:
    """Sync one account by its method; records a sync run and an event either way.

    At most one sync of an account runs at a time, in any process: refresh tokens
    work once, so two syncs refreshing the same grant would lose it. A sync that finds
    another running answers ``already_running``; the running one fetches everything.

    A sync nobody asked for (a job: the schedule's, a webhook's, a retry) is skipped
    with ``issuer_down`` while its issuer is down, except the one probe that checks
    whether the issuer answers again. A person's ``requested`` sync always asks.
    """
    lease = SyncLease(ctx, account_id)
    if not await lease.acquire():
        return SyncResult(account_id, "already_running")
    try:
        return await _sync_leased(ctx, account_id, lease, requested)
    finally:
        await lease.release()


class LeaseLost(Exception):
    """Another process took over the account's sync after this one's lease ran out."""


class SyncLease:
    """The account's sync lease, renewed at every page so a long sync keeps it."""

    def __init__(self, ctx: ServiceContext, account_id: str) -> None:
        self._ctx = ctx
        self._account_id = account_id
        self._held: dt.datetime | None = None

    async def acquire(self) -> bool:
        until = self._ctx.clock() + self._ctx.sync_lease
        async with self._ctx.uow() as uow:
            acquired = await uow.repo.acquire_sync_lease(self._account_id, self._ctx.clock(), until)
            await uow.commit()
        self._held = until if acquired else None
        return acquired

    async def renew(self) -> None:
        assert self._held is not None
        until = self._ctx.clock() + self._ctx.sync_lease
        async with self._ctx.uow() as uow:
            kept = await uow.repo.renew_sync_lease(self._account_id, self._held, until)
            await uow.commit()
        if not kept:
            self._held = None
            raise LeaseLost("the sync lease was taken over")
        self._held = until

    async def release(self) -> None:
        if self._held is None:
            return
        async with self._ctx.uow() as uow:
            await uow.repo.renew_sync_lease(self._account_id, self._held, None)
            await uow.commit()
        self._held = None


async def _sync_leased(
    ctx: ServiceContext, account_id: str, lease: SyncLease, requested: bool
) -> SyncResult:
    async with ctx.uow() as uow:
        account = await uow.repo.get_account(account_id)
        if account is None or account.status in (
            AccountStatus.DELETED,
            AccountStatus.DISABLED,
        ):
            return SyncResult(account_id, "skipped")
        method = SyncMethod(account.sync_method)
        if method == SyncMethod.UPLOAD or (
            method == SyncMethod.API and account.status == AccountStatus.NEEDS_REAUTH
        ):
            return SyncResult(account_id, "skipped")
        if not requested and not await issuer_health.may_sync(ctx, uow.repo, account.issuer):
            # The issuer fails for everyone: asking it again for every account only adds
            # load; the schedule syncs this account once the probe finds it answering.
            return SyncResult(account_id, "skipped", error_code="issuer_down")
        if not await uow.repo.change_account_status(
            account_id, [account.status], AccountStatus.SYNCING
        ):
            # Revoked, deleted or re-linked since it was read: its own events decide.
            return SyncResult(account_id, "skipped")
        run = SyncRun(account_id=account_id, method=method, started_at=ctx.clock())
        await uow.repo.add(run)
        await uow.commit()
        run_id = run.id
    totals = IngestCounts()
    try:
        if method == SyncMethod.API:
            totals = await _sync_api(ctx, account_id, lease)
        else:
            totals = await _sync_legacy(ctx, account_id)
    except LeaseLost:
        # The pages committed so far stand; the sync that took over carries on from them.
        async with ctx.uow() as uow:
            superseded = await uow.repo.last_sync_run(account_id)
            if superseded is not None and superseded.id == run_id:
                superseded.status = "superseded"
                superseded.finished_at = ctx.clock()
            await uow.commit()
        return SyncResult(account_id, "already_running")
    except IssuerError as exc:
        await _fail(ctx, account_id, run_id, exc)
        if isinstance(exc, RateLimited | IssuerUnavailable):
            delay = exc.retry_after if isinstance(exc, RateLimited) and exc.retry_after else 30.0
            raise RetryLater(delay, exc.code) from exc
        return SyncResult(account_id, "failed", error_code=exc.code)
    except Exception:
        # Never leave the account shown as syncing; the runner retries the job.
        await _fail(ctx, account_id, run_id, InternalSyncError("unexpected error during sync"))
        raise
    async with ctx.uow() as uow:
        account = await uow.repo.get_account(account_id, for_update=True)
        assert account is not None
        # A link revoked (or an account deleted) while the sync ran keeps that status;
        # the pages fetched are kept, and the revocation's own event is the news.
        still_ours = await uow.repo.change_account_status(
            account_id, [AccountStatus.SYNCING], AccountStatus.ACTIVE
        )
        account.last_synced_at = ctx.clock()
        last = await uow.repo.last_sync_run(account_id)
        if last is not None and last.id == run_id:
            last.status = "succeeded"
            last.added, last.modified, last.removed = totals.added, totals.modified, totals.removed
            last.finished_at = ctx.clock()
        await issuer_health.record_outcome(ctx, uow.repo, account.issuer, account_id, None)
        if still_ours:
            account.last_error = None
            await events.record(
                ctx,
                uow.repo,
                events.EventType.SYNC_COMPLETED,
                office_id=account.office_id,
                account_id=account.id,
                added=totals.added,
                modified=totals.modified,
                removed=totals.removed,
                issuer=str(account.issuer),
            )
        await uow.commit()
    return SyncResult(account_id, "succeeded", totals.added, totals.modified, totals.removed)


async def _sync_api(ctx: ServiceContext, account_id: str, lease: SyncLease) -> IngestCounts:
    async with ctx.uow() as uow:
        link = await uow.repo.active_link_of_account(account_id)
        if link is None:
            raise ReauthRequired("account has no active link")
        tokens = load_tokens(ctx, link)
        link_id, issuer = link.id, Issuer(link.issuer)
    gateway = ctx.gateway(issuer)
    current: list[TokenSet] = [tokens]
    persist = saver_for(ctx, link_id)

    async def save(rotated: TokenSet) -> None:
        # Later calls of this sync must use the rotated pair: the old refresh token is spent.
        await persist(rotated)
        current[0] = rotated

    grant = await gateway.grant_info(current[0], save)
    covered = await _follow_card_changes(ctx, account_id, issuer, grant)
    totals = IngestCounts()
    restarted = False
    while True:
        async with ctx.uow() as uow:
            fresh = await uow.repo.get_account(account_id)
            if fresh is None:
                raise BadPayload("account vanished during sync")
            cursor = fresh.sync_cursor
        try:
            page = await gateway.sync_statements(current[0], save, cursor, count=PAGE_SIZE)
        except InvalidCursor:
            if cursor is None or restarted:
                raise
            # The issuer forgot our place: start again; lines already stored are matched
            # by transaction id, so nothing is doubled.
            restarted = True
            async with ctx.uow() as uow:
                account = await uow.repo.get_account(account_id, for_update=True)
                if account is not None and account.sync_cursor == cursor:
                    account.sync_cursor = None
                    await uow.commit()
            continue
        async with ctx.uow() as uow:
            account = await uow.repo.get_account(account_id, for_update=True)
            if account is None or account.sync_cursor != cursor:
                # Another worker moved the cursor meanwhile; its pages are committed.
                break
            lines = await _lines_for_account(
                uow.repo, account, issuer, covered, [*page.added, *page.modified]
            )
            counts = await ingest_api_lines(uow.repo, account, lines, page.removed, ctx.clock())
            account.sync_cursor = page.next_cursor
            await uow.commit()
        totals.added += counts.added
        totals.modified += counts.modified
        totals.removed += counts.removed
        if not page.has_more:
            break
        await lease.renew()
    return totals


async def _lines_for_account(
    repo: Repository,
    account: Account,
    issuer: Issuer,
    covered_card_ids: dict[str, str],
    lines: list[IssuerStatement],
) -> list[tuple[str, IssuerStatement]]:
    """Pair each line with its card; R15: an Amex account takes only its own card's lines."""
    result = []
    for line in lines:
        card_id = covered_card_ids.get(line.card_ref)
        if card_id is None:
            card = await repo.card_by_ref(issuer, line.card_ref)
            card_id = card.id if card else None
        if card_id is None or not rules.statement_belongs(
            card_id, account, covered_card_ids.values()
        ):
            continue
        result.append((card_id, line))
    return result


async def _follow_card_changes(
    ctx: ServiceContext, account_id: str, issuer: Issuer, grant: GrantInfo
) -> dict[str, str]:
    """R7: notice a card upgrade or downgrade; R9: note every card the grant covers."""
    async with ctx.uow() as uow:
        account = await uow.repo.get_account(account_id, for_update=True)
        assert account is not None
        covered = await _note_cards(ctx, uow.repo, account, issuer, grant.cards)
        await uow.commit()
        return covered


async def _note_cards(
    ctx: ServiceContext,
    repo: Repository,
    account: Account,
    issuer: Issuer,
    seen_cards: Sequence[IssuerCard],
) -> dict[str, str]:
    """Keep the issuer's view of the cards; answer card ref → card id of the account's cards.

    R7: the account's card reported as replaced moves the account to its successor, and
    from then on a sync fetches the new card's statements only: the old card's come by
    the three ways of R7 (upload, its own credentials, an account of its own). An account
    made for the old card after the change was known (R7 c) keeps that card alone.
    R15: an Amex account covers its own card only; R9: JCB covers every user's card.
    """
    covered: dict[str, str] = {}
    replaced: set[str] = set()
    for seen in seen_cards:
        covered[seen.card_ref] = (await upsert_card(repo, issuer, seen)).id
        if seen.status == "replaced" or seen.replaced_by:
            replaced.add(seen.card_ref)
    await card_discovery.note_reported_cards(ctx, repo, account, issuer, seen_cards, covered)
    card = await repo.get_card(account.card_id) if account.card_id else None
    if card is None:
        return covered
    if card.successor_id is not None:
        return {card.card_ref: card.id}  # R7 (c): the old card's own account
    reported = next((c for c in seen_cards if c.card_ref == card.card_ref), None)
    if reported is not None and reported.replaced_by:
        await _record_card_change(ctx, repo, account, card, reported.replaced_by, covered)
    if issuer == Issuer.AMEX:
        return {card.card_ref: card.id}  # R15
    return {ref: card_id for ref, card_id in covered.items() if ref not in replaced}  # R7


async def _record_card_change(
    ctx: ServiceContext,
    repo: Repository,
    account: Account,
    old: Card,
    successor_ref: str,
    covered: dict[str, str],
) -> None:
    successor_id = covered.get(successor_ref)
    if successor_id is None:
        successor = await repo.card_by_ref(Issuer(old.issuer), successor_ref)
        successor_id = successor.id if successor else None
    if successor_id is None or old.successor_id == successor_id:
        return
    old.successor_id = successor_id
    account.card_id = successor_id
    await events.record(
        ctx,
        repo,
        events.EventType.CARD_CHANGED,
        office_id=account.office_id,
        account_id=account.id,
        old_card_id=old.id,
        new_card_id=successor_id,
        old_card=old.masked_number,
        # R7: the three ways to keep the old card's statements.
        recovery=["statement_upload", "old_credentials_resync", "new_account_for_old_card"],
    )


async def _sync_legacy(ctx: ServiceContext, account_id: str) -> IngestCounts:
    async with ctx.uow() as uow:
        account = await uow.repo.get_account(account_id)
        assert account is not None
        if not account.has_legacy_credentials:
            raise LegacyLoginFailed("no stored credentials")
        assert account.legacy_login_id is not None and account.legacy_password is not None
        login_id = ctx.secrets.decrypt(account.legacy_login_id)
        password = ctx.secrets.decrypt(account.legacy_password)
        issuer = Issuer(account.issuer)
    fetched = await ctx.gateway(issuer).legacy_fetch(login_id, password)
    async with ctx.uow() as uow:
        account = await uow.repo.get_account(account_id, for_update=True)
        assert account is not None
        covered = await _note_cards(ctx, uow.repo, account, issuer, fetched.cards)
        lines = await _lines_for_account(uow.repo, account, issuer, covered, fetched.statements)
        counts = await ingest_batch(uow.repo, account, lines, StatementSource.LEGACY, ctx.clock())
        await uow.commit()
        return counts


async def _old_grant_holds_card(ctx: ServiceContext, account_id: str, exc: IssuerError) -> bool:
    """Whether the issuer still holds the card for the link that now needs re-authentication.

    Only an Amex grant does: it stays registered, and keeps the card greyed out on the
    consent page, until it is stopped on the member site; so the re-authentication
    notice must send the person there first. Asked as ``check_link`` asks.
    """
    if not isinstance(exc, ReauthRequired):
        return False
    async with ctx.uow() as uow:
        account = await uow.repo.get_account(account_id)
        link = await uow.repo.active_link_of_account(account_id)
    if account is None or account.issuer != Issuer.AMEX or link is None:
        return False
    try:
        return not await stopped_at_issuer(ctx, link)
    except IssuerError:
        # R10/R16: a grant not known to be stopped still holds the card; telling the
        # person to stop it costs a look at the member site, not telling them a dead end.
        return True


async def _fail(ctx: ServiceContext, account_id: str, run_id: str, exc: IssuerError) -> None:
    """Put the account and link in the state the error means, and say so."""
    held = await _old_grant_holds_card(ctx, account_id, exc)
    async with ctx.uow() as uow:
        account = await uow.repo.get_account(account_id, for_update=True)
        assert account is not None
        link: ApiLink | None = await uow.repo.active_link_of_account(account_id)
        account.last_error = exc.code
        # Only while the account is still this sync's: if it was linked again meanwhile
        # (active), revoked by a webhook or deleted, the newer state and link stand.
        ours = [AccountStatus.SYNCING]
        if isinstance(exc, ConsentRevoked):
            if await uow.repo.change_account_status(account_id, ours, AccountStatus.NEEDS_REAUTH):
                if link is not None:
                    link.status = LinkStatus.REVOKED
                    link.revoked_at = ctx.clock()
                await events.record(
                    ctx,
                    uow.repo,
                    events.EventType.LINK_REVOKED,
                    office_id=account.office_id,
                    account_id=account.id,
                )
        elif isinstance(exc, ReauthRequired | LegacyLoginFailed):
            if await uow.repo.change_account_status(account_id, ours, AccountStatus.NEEDS_REAUTH):
                if link is not None:
                    link.status = LinkStatus.EXPIRED
                await events.record(
                    ctx,
                    uow.repo,
                    events.EventType.LINK_NEEDS_REAUTH,
                    office_id=account.office_id,
                    account_id=account.id,
                    reason=exc.code,
                    # R10/R16: stop the old grant on the member site before re-authenticating.
                    stop_at_member_site=held,
                )
        else:
            await uow.repo.change_account_status(account_id, ours, AccountStatus.ACTIVE)
        await issuer_health.record_outcome(ctx, uow.repo, account.issuer, account_id, exc.code)
        health = await uow.repo.issuer_health(str(account.issuer), ctx.clock())
        run = await uow.repo.last_sync_run(account_id)
        if run is not None and run.id == run_id:
            run.status = "failed"
            run.error_code = exc.code
            run.finished_at = ctx.clock()
        await events.record(
            ctx,
            uow.repo,
            events.EventType.SYNC_FAILED,
            office_id=account.office_id,
            account_id=account.id,
            error_code=exc.code,
            # "down": the issuer fails for everyone; a notice may say so rather than
            # repeat this account's failure at every probe.
            issuer_state=health.state.value,
        )
        await uow.commit()
    log.info("sync of account %s failed: %s", account_id, exc.code)
