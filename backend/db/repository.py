"""The SQL repository and unit of work behind the service layer's ports."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import issuer_health
from backend.db import tables as t
from backend.db.job_queue import queue_of
from backend.domain import errors
from backend.domain.issuer_health import IssuerHealth, OutcomeKind
from backend.domain.model import (
    Account,
    AccountStatus,
    ApiLink,
    Card,
    Event,
    Invitation,
    Issuer,
    JobKind,
    LinkStatus,
    Membership,
    NewStatement,
    Office,
    PendingAuthorization,
    Role,
    Rollout,
    Statement,
    SyncRun,
)

# Set in a session's info when its transaction queues a job or an outbox row.
NEW_WORK = "renkei_new_work"
LOCK_KEY_LENGTH = 100  # the length of jobs.lock_key
_COLUMNS = [column.name for column in t.statements.columns]  # of statements


class SqlRepository:
    """Queries the use cases need, on one session (one transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ----------------------------------------------------------------- offices
    async def add(self, entity: object) -> None:
        self.session.add(entity)

    async def flush(self) -> None:
        await self.session.flush()

    async def get_office(self, office_id: str) -> Office | None:
        return await self.session.get(Office, office_id)

    async def list_offices(self, office_ids: Sequence[str] | None) -> list[Office]:
        query = select(Office).order_by(t.offices.c.created_at, t.offices.c.name)
        if office_ids is not None:
            query = query.where(t.offices.c.id.in_(list(office_ids)))
        return list((await self.session.scalars(query)).all())

    async def memberships_of(self, email: str) -> list[Membership]:
        query = select(Membership).where(t.memberships.c.email == email.lower())
        return list((await self.session.scalars(query)).all())

    async def members_of_office(self, office_id: str) -> list[Membership]:
        query = (
            select(Membership)
            .where(t.memberships.c.office_id == office_id)
            .order_by(t.memberships.c.email)
        )
        return list((await self.session.scalars(query)).all())

    async def role_in(self, office_id: str, email: str) -> Role | None:
        query = select(t.memberships.c.role).where(
            t.memberships.c.office_id == office_id, t.memberships.c.email == email.lower()
        )
        role = await self.session.scalar(query)
        return Role(role) if role is not None else None

    async def delete(self, entity: object) -> None:
        await self.session.delete(entity)

    async def lock_office(self, office_id: str) -> None:
        """Changes to an office's members and admins take turns, until the commit.

        A write rather than ``FOR UPDATE``: PostgreSQL locks the row either way, and SQLite
        takes its write lock now, so this must be the transaction's first statement (a
        transaction that read first could not write once another one committed).
        """
        await self.session.execute(
            update(t.offices).where(t.offices.c.id == office_id).values(name=t.offices.c.name)
        )

    async def membership(self, office_id: str, email: str) -> Membership | None:
        query = select(Membership).where(
            t.memberships.c.office_id == office_id, t.memberships.c.email == email.lower()
        )
        return (await self.session.scalars(query)).first()

    async def invitations_of_office(self, office_id: str) -> list[Invitation]:
        query = (
            select(Invitation)
            .where(t.invitations.c.office_id == office_id)
            .order_by(t.invitations.c.created_at, t.invitations.c.email)
        )
        return list((await self.session.scalars(query)).all())

    async def invitations_for(self, email: str) -> list[Invitation]:
        query = (
            select(Invitation)
            .where(t.invitations.c.email == email.lower())
            .order_by(t.invitations.c.created_at, t.invitations.c.id)
        )
        return list((await self.session.scalars(query)).all())

    async def get_invitation(self, invitation_id: str) -> Invitation | None:
        return await self.session.get(Invitation, invitation_id)

    async def invitation(self, office_id: str, email: str) -> Invitation | None:
        query = select(Invitation).where(
            t.invitations.c.office_id == office_id, t.invitations.c.email == email.lower()
        )
        return (await self.session.scalars(query)).first()

    async def is_released(self, office_id: str, issuer: Issuer) -> bool:
        query = select(func.count()).where(
            t.rollouts.c.office_id == office_id, t.rollouts.c.issuer == issuer.value
        )
        return bool(await self.session.scalar(query))

    async def rollouts_of(self, office_id: str) -> list[Rollout]:
        query = select(Rollout).where(t.rollouts.c.office_id == office_id)
        return list((await self.session.scalars(query)).all())

    # ----------------------------------------------------------------- cards
    async def get_card(self, card_id: str) -> Card | None:
        return await self.session.get(Card, card_id)

    async def card_by_ref(self, issuer: Issuer, card_ref: str) -> Card | None:
        query = select(Card).where(
            t.cards.c.issuer == issuer.value,
            t.cards.c.card_ref == card_ref,
            t.cards.c.office_id.is_(None),
        )
        return await self.session.scalar(query)

    async def cards_by_refs(self, issuer: Issuer, card_refs: Sequence[str]) -> list[Card]:
        query = select(Card).where(
            t.cards.c.issuer == issuer.value,
            t.cards.c.card_ref.in_(list(card_refs)),
            t.cards.c.office_id.is_(None),
        )
        return list((await self.session.scalars(query)).all())

    async def declared_card(self, office_id: str, issuer: Issuer, card_ref: str) -> Card | None:
        query = select(Card).where(
            t.cards.c.office_id == office_id,
            t.cards.c.issuer == issuer.value,
            t.cards.c.card_ref == card_ref,
        )
        return await self.session.scalar(query)

    async def move_statements_to_card(
        self, account_id: str, from_card_id: str, to_card_id: str
    ) -> None:
        await self.session.flush()
        await self.session.execute(
            update(t.statements)
            .where(t.statements.c.account_id == account_id, t.statements.c.card_id == from_card_id)
            .values(card_id=to_card_id)
        )

    async def cards_with_basic(self, basic_card_id: str) -> list[Card]:
        query = select(Card).where(t.cards.c.basic_card_id == basic_card_id)
        return list((await self.session.scalars(query)).all())

    async def cards_replaced_by(self, successor_id: str) -> list[Card]:
        query = select(Card).where(t.cards.c.successor_id == successor_id)
        return list((await self.session.scalars(query)).all())

    # ----------------------------------------------------------------- accounts
    async def get_account(self, account_id: str, *, for_update: bool = False) -> Account | None:
        query = select(Account).where(t.accounts.c.id == account_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def change_account_status(
        self, account_id: str, expected: Sequence[AccountStatus], new: AccountStatus
    ) -> bool:
        """Set the status only while it is one of ``expected``, in one statement.

        A sync runs for seconds or minutes: a webhook that revoked the link, or a
        deletion, may have changed the status meanwhile and must not be undone.
        """
        await self.session.flush()
        result = await self.session.execute(
            update(Account)
            .where(t.accounts.c.id == account_id)
            .where(t.accounts.c.status.in_(list(expected)))
            .values(status=new)
            .execution_options(synchronize_session="fetch")
        )
        return bool(getattr(result, "rowcount", 0))

    async def list_accounts(
        self, office_id: str, *, include_deleted: bool = False
    ) -> list[Account]:
        query = select(Account).where(t.accounts.c.office_id == office_id)
        if not include_deleted:
            query = query.where(t.accounts.c.status != AccountStatus.DELETED.value)
        query = query.order_by(t.accounts.c.created_at, t.accounts.c.name)
        return list((await self.session.scalars(query)).all())

    async def acquire_sync_lease(
        self, account_id: str, now: dt.datetime, until: dt.datetime
    ) -> bool:
        """Take the account's sync lease unless another sync holds it (compare-and-set)."""
        result = await self.session.execute(
            update(t.accounts)
            .where(
                t.accounts.c.id == account_id,
                or_(
                    t.accounts.c.sync_lease_until.is_(None),
                    t.accounts.c.sync_lease_until < now,
                ),
            )
            .values(sync_lease_until=until)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def renew_sync_lease(
        self, account_id: str, held: dt.datetime, until: dt.datetime | None
    ) -> bool:
        """Move (or with ``until=None`` give up) a lease this sync still holds."""
        result = await self.session.execute(
            update(t.accounts)
            .where(t.accounts.c.id == account_id, t.accounts.c.sync_lease_until == held)
            .values(sync_lease_until=until)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def accounts_using_card(self, card_id: str) -> list[Account]:
        query = (
            select(Account)
            .where(
                t.accounts.c.card_id == card_id,
                t.accounts.c.status != AccountStatus.DELETED.value,
            )
            .order_by(t.accounts.c.created_at)
        )
        return list((await self.session.scalars(query)).all())

    # ----------------------------------------------------------------- links
    async def active_link_of_account(self, account_id: str) -> ApiLink | None:
        query = select(ApiLink).where(
            t.api_links.c.account_id == account_id,
            t.api_links.c.status == LinkStatus.ACTIVE.value,
        )
        return await self.session.scalar(query)

    async def latest_link_of_account(self, account_id: str) -> ApiLink | None:
        query = (
            select(ApiLink)
            .where(t.api_links.c.account_id == account_id)
            .order_by(t.api_links.c.created_at.desc())
            .limit(1)
        )
        return await self.session.scalar(query)

    async def active_links_for_card(self, card_id: str) -> list[ApiLink]:
        query = select(ApiLink).where(
            t.api_links.c.card_id == card_id, t.api_links.c.status == LinkStatus.ACTIVE.value
        )
        return list((await self.session.scalars(query)).all())

    async def active_links_for_subject(self, issuer: Issuer, subject: str) -> list[ApiLink]:
        query = select(ApiLink).where(
            t.api_links.c.issuer == issuer.value,
            t.api_links.c.subject == subject,
            t.api_links.c.status == LinkStatus.ACTIVE.value,
        )
        return list((await self.session.scalars(query)).all())

    async def expired_links_of_grant(self, issuer: Issuer, grant_id: str) -> list[ApiLink]:
        query = select(ApiLink).where(
            t.api_links.c.issuer == issuer.value,
            t.api_links.c.issuer_grant_id == grant_id,
            t.api_links.c.status == LinkStatus.EXPIRED.value,
        )
        return list((await self.session.scalars(query)).all())

    async def add_link(self, link: ApiLink) -> None:
        """Insert a link; the unique indexes turn a lost race into the rule's error."""
        self.session.add(link)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            text = str(exc.orig).lower()
            if "active_account" in text or "api_links.account_id" in text:
                # Two consents for one account finished at once: one link won.
                raise errors.InvalidState("this account was linked meanwhile") from exc
            if "jcb_subject" in text or (link.issuer == Issuer.JCB and "subject" in text):
                raise errors.MyJcbIdAlreadyLinked("this MyJCB ID is already linked") from exc  # R6
            raise errors.CardAlreadyLinked("this card is already API-linked") from exc  # R5

    async def set_link_tokens(
        self,
        link_id: str,
        tokens: bytes,
        expires_at: dt.datetime | None,
        *,
        consent_expires_at: dt.datetime | None = None,
    ) -> None:
        values: dict[str, object] = {"tokens": tokens, "expires_at": expires_at}
        if consent_expires_at is not None:
            # A refresh answer that names the consent's end keeps the stored one current.
            values["consent_expires_at"] = consent_expires_at
        await self.session.execute(
            update(t.api_links).where(t.api_links.c.id == link_id).values(**values)
        )

    async def claim_consent_warning(self, link_id: str, days: int) -> bool:
        c = t.api_links.c
        result = await self.session.execute(
            update(t.api_links)
            .where(
                c.id == link_id,
                or_(c.consent_warned_days.is_(None), c.consent_warned_days > days),
            )
            .values(consent_warned_days=days)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def links_with_consent_ending(self, before: dt.datetime) -> list[ApiLink]:
        query = (
            select(ApiLink)
            .where(
                t.api_links.c.status == LinkStatus.ACTIVE.value,
                t.api_links.c.consent_expires_at.is_not(None),
                t.api_links.c.consent_expires_at <= before,
            )
            .order_by(t.api_links.c.consent_expires_at)
        )
        return list((await self.session.scalars(query)).all())

    # ----------------------------------------------------------------- authorizations
    async def pending_by_state(self, state: str) -> PendingAuthorization | None:
        query = select(PendingAuthorization).where(t.pending_authorizations.c.state == state)
        return await self.session.scalar(query)

    async def consume_pending(self, pending_id: str, now: dt.datetime) -> bool:
        """Mark used exactly once: a replayed callback finds it already used."""
        result = await self.session.execute(
            update(t.pending_authorizations)
            .where(
                t.pending_authorizations.c.id == pending_id,
                t.pending_authorizations.c.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def consume_pending_of_account(self, account_id: str, now: dt.datetime) -> int:
        result = await self.session.execute(
            update(t.pending_authorizations)
            .where(
                t.pending_authorizations.c.account_id == account_id,
                t.pending_authorizations.c.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def pending_by_id(self, pending_id: str) -> PendingAuthorization | None:
        query = select(PendingAuthorization).where(t.pending_authorizations.c.id == pending_id)
        return await self.session.scalar(query)

    async def count_sign_in_attempt(self, pending_id: str, limit: int) -> bool:
        # Compare-and-set: two tries at once cannot both take the last one.
        pending = t.pending_authorizations
        result = await self.session.execute(
            update(pending)
            .where(pending.c.id == pending_id, pending.c.sign_in_attempts < limit)
            .values(sign_in_attempts=pending.c.sign_in_attempts + 1)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def use_sign_in_code(self, pending_id: str, now: dt.datetime) -> bool:
        pending = t.pending_authorizations
        result = await self.session.execute(
            update(pending)
            .where(pending.c.id == pending_id, pending.c.sign_in_used_at.is_(None))
            .values(sign_in_used_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def bind_browser(self, pending_id: str, binding: str) -> bool:
        pending = t.pending_authorizations
        result = await self.session.execute(
            update(pending)
            .where(pending.c.id == pending_id, pending.c.used_at.is_(None))
            .values(browser_binding=binding)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    # ----------------------------------------------------------------- statements
    async def statements_by_txn_ids(
        self, account_id: str, txn_ids: Sequence[str]
    ) -> dict[str, Statement]:
        if not txn_ids:
            return {}
        query = select(Statement).where(
            t.statements.c.account_id == account_id,
            t.statements.c.issuer_txn_id.in_(list(txn_ids)),
        )
        rows = (await self.session.scalars(query)).all()
        return {row.issuer_txn_id: row for row in rows if row.issuer_txn_id is not None}

    async def statements_matching(
        self, account_id: str, card_ids: Sequence[str], dates: Sequence[dt.date]
    ) -> list[Statement]:
        """Candidates for natural-key matching: same account, cards and use dates."""
        if not card_ids or not dates:
            return []
        query = select(Statement).where(
            t.statements.c.account_id == account_id,
            t.statements.c.card_id.in_(list(card_ids)),
            t.statements.c.use_date.in_(sorted(set(dates))),
        )
        return list((await self.session.scalars(query)).all())

    async def insert_statements(self, rows: Sequence[NewStatement]) -> None:
        """New statements in one multi-row insert (no ORM bookkeeping per row)."""
        if not rows:
            return
        values = [
            # A plain NewStatement's fields are the columns; a tracked one carries more.
            vars(row) if type(row) is NewStatement else {n: getattr(row, n) for n in _COLUMNS}
            for row in rows
        ]
        await self.session.execute(t.statements.insert(), values)

    async def delete_statements_by_txn(self, account_id: str, txn_ids: Sequence[str]) -> int:
        if not txn_ids:
            return 0
        result = await self.session.execute(
            delete(t.statements).where(
                t.statements.c.account_id == account_id,
                t.statements.c.issuer_txn_id.in_(list(txn_ids)),
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def list_statements(
        self,
        account_id: str,
        *,
        after: tuple[dt.date, str] | None,
        limit: int,
        card_id: str | None = None,
    ) -> list[Statement]:
        """Newest first, keyset-paged by (use_date, id)."""
        query = select(Statement).where(t.statements.c.account_id == account_id)
        if card_id is not None:
            query = query.where(t.statements.c.card_id == card_id)
        if after is not None:
            date, sid = after
            query = query.where(
                or_(
                    t.statements.c.use_date < date,
                    (t.statements.c.use_date == date) & (t.statements.c.id < sid),
                )
            )
        query = query.order_by(t.statements.c.use_date.desc(), t.statements.c.id.desc()).limit(
            limit
        )
        return list((await self.session.scalars(query)).all())

    async def count_statements(self, account_id: str) -> int:
        query = select(func.count()).where(t.statements.c.account_id == account_id)
        return int(await self.session.scalar(query) or 0)

    # ----------------------------------------------------------------- runs and events
    async def last_sync_run(self, account_id: str) -> SyncRun | None:
        query = (
            select(SyncRun)
            .where(t.sync_runs.c.account_id == account_id)
            .order_by(t.sync_runs.c.started_at.desc())
            .limit(1)
        )
        return await self.session.scalar(query)

    async def add_event(self, event: Event, webhook_urls: Sequence[str], now: dt.datetime) -> None:
        """Record an event and, in the same transaction, its outbox rows."""
        if webhook_urls:
            self.session.info[NEW_WORK] = True
        self.session.add(event)
        await self.session.flush()
        for url in webhook_urls:
            delivery_id = await self.session.scalar(
                t.webhook_deliveries.insert()
                .values(event_id=event.id, url=url, attempts=0, next_attempt_at=now)
                .returning(t.webhook_deliveries.c.id)
            )
            # A job per row, on either runner. One account's (or office's) events keep
            # their order for each subscriber: jobs of one lock key run in order.
            lane = f"outbox:{url}|{event.account_id or event.office_id}"
            await self.enqueue_job(
                JobKind.DELIVER_WEBHOOK.value,
                {"delivery_id": int(delivery_id or 0)},
                lock_key=_lock_key(lane),
                run_at=now,
                once=False,
            )

    async def list_events(
        self,
        office_ids: Sequence[str] | None,
        *,
        account_id: str | None,
        limit: int,
        event_type: str | None = None,
    ) -> list[Event]:
        query = select(Event)
        if event_type is not None:
            query = query.where(t.events.c.type == event_type)
        if office_ids is not None:
            query = query.where(t.events.c.office_id.in_(list(office_ids)))
        if account_id is not None:
            query = query.where(t.events.c.account_id == account_id)
        query = query.order_by(t.events.c.created_at.desc(), t.events.c.id.desc()).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def remember_issuer_event(self, event_id: str, issuer: str, now: dt.datetime) -> bool:
        """True the first time an issuer's webhook id is seen; False for a replay.

        Two copies arriving at once race for the same primary key; the insert that
        finds it taken does nothing, and that copy is a replay too.
        """
        dialect = self.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        inserted = await self.session.scalar(
            insert(t.issuer_webhook_receipts)
            .values(event_id=event_id, issuer=issuer, received_at=now)
            .on_conflict_do_nothing()
            .returning(t.issuer_webhook_receipts.c.event_id)
        )
        return inserted is not None

    # ----------------------------------------------------------------- cards that appear
    async def cards_seen_by_account(self, account_id: str) -> set[str]:
        c = t.account_seen_cards.c
        rows = await self.session.scalars(select(c.card_id).where(c.account_id == account_id))
        return set(rows.all())

    async def card_seen_in_office(self, office_id: str, card_id: str) -> bool:
        c = t.account_seen_cards.c
        found = await self.session.scalar(
            select(c.account_id).where(c.office_id == office_id, c.card_id == card_id).limit(1)
        )
        return found is not None

    async def note_card_seen(
        self, account_id: str, office_id: str, card_id: str, at: dt.datetime
    ) -> None:
        await self.session.execute(
            t.account_seen_cards.insert().values(
                account_id=account_id, office_id=office_id, card_id=card_id, seen_at=at
            )
        )

    # ----------------------------------------------------------------- issuer health
    async def record_sync_outcome(
        self,
        issuer: str,
        account_id: str | None,
        kind: OutcomeKind,
        error_code: str | None,
        at: dt.datetime,
    ) -> None:
        await issuer_health.record_outcome(self.session, issuer, account_id, kind, error_code, at)

    async def issuer_health(self, issuer: str, now: dt.datetime) -> IssuerHealth:
        return await issuer_health.health_of(self.session, issuer, now)

    async def claim_issuer_probe(self, issuer: str, now: dt.datetime, until: dt.datetime) -> bool:
        return await issuer_health.claim_probe(self.session, issuer, now, until)

    # ----------------------------------------------------------------- jobs
    async def accounts_due_for_sync(self, now: dt.datetime, interval: dt.timedelta) -> list[str]:
        rows = await self.session.execute(
            select(t.accounts.c.id, t.accounts.c.issuer)
            .where(
                t.accounts.c.status.in_(["active", "syncing"]),
                t.accounts.c.sync_method.in_(["api", "legacy"]),
                (t.accounts.c.last_synced_at.is_(None))
                | (t.accounts.c.last_synced_at < now - interval),
                # A sync under way is the one the schedule would ask for (a first sync at
                # start, say); a lease left by a dead process has lapsed and counts not.
                (t.accounts.c.sync_lease_until.is_(None)) | (t.accounts.c.sync_lease_until < now),
            )
            .order_by(t.accounts.c.last_synced_at.is_not(None), t.accounts.c.last_synced_at)
        )
        due = [(str(account_id), str(issuer)) for account_id, issuer in rows.all()]
        # An issuer that is down gets no scheduled syncs but its probe, when that is due.
        return await issuer_health.without_down_issuers(self.session, due, now)

    async def enqueue_job(
        self,
        kind: str,
        payload: dict[str, object],
        *,
        lock_key: str | None,
        run_at: dt.datetime,
        once: bool = True,
    ) -> None:
        self.session.info[NEW_WORK] = True
        queue = queue_of(self.session)
        if queue is not None:
            await queue.enqueue(
                self.session, kind, payload, lock_key=lock_key, run_at=run_at, once=once
            )
            return
        if lock_key is not None and once:
            queued = await self.session.scalar(
                select(t.jobs.c.id)
                .where(
                    t.jobs.c.kind == kind,
                    t.jobs.c.lock_key == lock_key,
                    t.jobs.c.status == "queued",
                )
                .order_by(t.jobs.c.run_at)
                .limit(1)
            )
            if queued is not None:
                # The queued job does the same work: asking again only brings it forward.
                await self.session.execute(
                    update(t.jobs)
                    .where(t.jobs.c.id == queued, t.jobs.c.run_at > run_at)
                    .values(run_at=run_at)
                )
                return
        await self.session.execute(
            t.jobs.insert().values(
                kind=kind,
                payload=payload,
                lock_key=lock_key,
                status="queued",
                attempts=0,
                run_at=run_at,
                created_at=run_at,
            )
        )

    async def running_lock_keys(self, kind: str) -> set[str]:
        queue = queue_of(self.session)
        if queue is not None:
            return await queue.running_lock_keys(self.session, kind)
        # A job whose runner died keeps "running" until its lease lapses and a runner
        # claims it again: it still does the work, so it counts too.
        keys = await self.session.scalars(
            select(t.jobs.c.lock_key).where(
                t.jobs.c.kind == kind,
                t.jobs.c.status == "running",
                t.jobs.c.lock_key.is_not(None),
            )
        )
        return {str(key) for key in keys}

    async def take_queued_job(
        self, kind: str, lock_key: str, now: dt.datetime, until: dt.datetime
    ) -> int | None:
        queue = queue_of(self.session)
        if queue is not None:
            return await queue.take_queued(self.session, kind, lock_key)
        found = await self.session.scalar(
            select(t.jobs.c.id)
            .where(
                t.jobs.c.kind == kind,
                t.jobs.c.lock_key == lock_key,
                t.jobs.c.status == "queued",
                t.jobs.c.run_at <= now,
            )
            .order_by(t.jobs.c.id)
            .limit(1)
        )
        if found is None:
            return None
        # Compare-and-set, as a runner claims: of the two, one takes it.
        taken = await self.session.execute(
            update(t.jobs)
            .where(t.jobs.c.id == found, t.jobs.c.status == "queued")
            .values(status="running", attempts=t.jobs.c.attempts + 1, locked_until=until)
        )
        return int(found) if getattr(taken, "rowcount", 0) == 1 else None

    async def settle_job(self, job_id: int, *, retry_at: dt.datetime | None) -> None:
        queue = queue_of(self.session)
        if queue is not None:
            await queue.settle(self.session, job_id, retry_at=retry_at)
            return
        values: dict[str, object] = (
            {"status": "done"}
            if retry_at is None
            else {"status": "queued", "run_at": retry_at, "locked_until": None}
        )
        await self.session.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(**values))


def _lock_key(key: str) -> str:
    """A lock key that fits its column: a long subscriber URL is kept as its digest."""
    if len(key) <= LOCK_KEY_LENGTH:
        return key
    return "outbox:" + hashlib.sha256(key.encode()).hexdigest()


class SqlUnitOfWork:
    """One transaction: rolls back unless ``commit`` was called.

    ``on_new_work`` is told after a commit that queued a job or an outbox row, so a
    runner in this process starts on it at once instead of at its next poll (runners
    elsewhere still find it by polling).
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        on_new_work: Callable[[], None] | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._on_new_work = on_new_work

    async def __aenter__(self) -> SqlUnitOfWork:
        self.session = self._session_factory()
        self.repo = SqlRepository(self.session)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            # What a read-only use case returns must stay readable after the rollback,
            # which would otherwise expire every loaded object.
            self.session.expunge_all()
            await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()
        if self.session.info.pop(NEW_WORK, False) and self._on_new_work is not None:
            self._on_new_work()
