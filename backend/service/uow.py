"""The unit of work and repository ports of the service layer.

``backend.db`` implements them on SQLAlchemy; the use cases see only these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol, Self

from backend.domain.issuer_health import IssuerHealth, OutcomeKind
from backend.domain.model import (
    Account,
    AccountStatus,
    ApiLink,
    Card,
    Event,
    Invitation,
    Issuer,
    Membership,
    NewStatement,
    Office,
    PendingAuthorization,
    Role,
    Rollout,
    Statement,
    SyncRun,
)


class Repository(Protocol):
    """Queries on one transaction."""

    async def add(self, entity: object) -> None: ...

    async def flush(self) -> None: ...

    async def get_office(self, office_id: str) -> Office | None: ...

    async def list_offices(self, office_ids: Sequence[str] | None) -> list[Office]: ...

    async def memberships_of(self, email: str) -> list[Membership]: ...

    async def members_of_office(self, office_id: str) -> list[Membership]: ...

    async def role_in(self, office_id: str, email: str) -> Role | None: ...

    async def delete(self, entity: object) -> None: ...

    async def lock_office(self, office_id: str) -> None: ...

    async def membership(self, office_id: str, email: str) -> Membership | None: ...

    async def invitations_of_office(self, office_id: str) -> list[Invitation]: ...

    async def invitations_for(self, email: str) -> list[Invitation]: ...

    async def get_invitation(self, invitation_id: str) -> Invitation | None: ...

    async def invitation(self, office_id: str, email: str) -> Invitation | None: ...

    async def is_released(self, office_id: str, issuer: Issuer) -> bool: ...

    async def rollouts_of(self, office_id: str) -> list[Rollout]: ...

    async def get_card(self, card_id: str) -> Card | None: ...

    async def card_by_ref(self, issuer: Issuer, card_ref: str) -> Card | None:
        """The issuer's card of that id (never a card an office declared)."""
        ...

    async def cards_by_refs(self, issuer: Issuer, card_refs: Sequence[str]) -> list[Card]: ...

    async def declared_card(self, office_id: str, issuer: Issuer, card_ref: str) -> Card | None:
        """The card this office declared under that id for its upload accounts, if any."""
        ...

    async def move_statements_to_card(
        self, account_id: str, from_card_id: str, to_card_id: str
    ) -> None: ...

    async def cards_with_basic(self, basic_card_id: str) -> list[Card]: ...

    async def cards_replaced_by(self, successor_id: str) -> list[Card]: ...

    async def get_account(self, account_id: str, *, for_update: bool = False) -> Account | None: ...

    async def change_account_status(
        self, account_id: str, expected: Sequence[AccountStatus], new: AccountStatus
    ) -> bool: ...

    async def list_accounts(
        self, office_id: str, *, include_deleted: bool = False
    ) -> list[Account]: ...

    async def acquire_sync_lease(
        self, account_id: str, now: dt.datetime, until: dt.datetime
    ) -> bool: ...

    async def renew_sync_lease(
        self, account_id: str, held: dt.datetime, until: dt.datetime | None
    ) -> bool: ...

    async def accounts_using_card(self, card_id: str) -> list[Account]: ...

    async def active_link_of_account(self, account_id: str) -> ApiLink | None: ...

    async def latest_link_of_account(self, account_id: str) -> ApiLink | None: ...

    async def active_links_for_card(self, card_id: str) -> list[ApiLink]: ...

    async def active_links_for_subject(self, issuer: Issuer, subject: str) -> list[ApiLink]: ...

    async def expired_links_of_grant(self, issuer: Issuer, grant_id: str) -> list[ApiLink]:
        """The links whose tokens died while the issuer's grant ``grant_id`` stayed."""
        ...

    async def add_link(self, link: ApiLink) -> None: ...

    async def set_link_tokens(
        self,
        link_id: str,
        tokens: bytes,
        expires_at: dt.datetime | None,
        *,
        consent_expires_at: dt.datetime | None = None,
    ) -> None: ...

    async def links_with_consent_ending(self, before: dt.datetime) -> list[ApiLink]:
        """Active links whose consent ends at or before ``before``, soonest first."""
        ...

    async def claim_consent_warning(self, link_id: str, days: int) -> bool:
        """Mark the ``days`` warning sent, unless it or a nearer one already was."""
        ...

    async def pending_by_state(self, state: str) -> PendingAuthorization | None: ...

    async def consume_pending(self, pending_id: str, now: dt.datetime) -> bool: ...

    async def consume_pending_of_account(self, account_id: str, now: dt.datetime) -> int:
        """Mark every authorization of the account not completed yet used (none completes)."""
        ...

    async def pending_by_id(self, pending_id: str) -> PendingAuthorization | None: ...

    async def count_sign_in_attempt(self, pending_id: str, limit: int) -> bool:
        """Count one try of the one-time code; False once ``limit`` tries are spent."""
        ...

    async def use_sign_in_code(self, pending_id: str, now: dt.datetime) -> bool:
        """Mark the one-time code used, exactly once."""
        ...

    async def bind_browser(self, pending_id: str, binding: str) -> bool:
        """Keep the browser binding of an authorization not completed yet."""
        ...

    async def statements_by_txn_ids(
        self, account_id: str, txn_ids: Sequence[str]
    ) -> dict[str, Statement]: ...

    async def statements_matching(
        self, account_id: str, card_ids: Sequence[str], dates: Sequence[dt.date]
    ) -> list[Statement]: ...

    async def insert_statements(self, rows: Sequence[NewStatement]) -> None: ...

    async def delete_statements_by_txn(self, account_id: str, txn_ids: Sequence[str]) -> int: ...

    async def list_statements(
        self,
        account_id: str,
        *,
        after: tuple[dt.date, str] | None,
        limit: int,
        card_id: str | None = None,
    ) -> list[Statement]: ...

    async def count_statements(self, account_id: str) -> int: ...

    async def last_sync_run(self, account_id: str) -> SyncRun | None: ...

    async def add_event(
        self, event: Event, webhook_urls: Sequence[str], now: dt.datetime
    ) -> None: ...

    async def list_events(
        self,
        office_ids: Sequence[str] | None,
        *,
        account_id: str | None,
        limit: int,
        event_type: str | None = None,
    ) -> list[Event]: ...

    async def remember_issuer_event(self, event_id: str, issuer: str, now: dt.datetime) -> bool: ...

    async def cards_seen_by_account(self, account_id: str) -> set[str]:
        """The ids of the issuer's cards the account's ID was ever reported with."""
        ...

    async def card_seen_in_office(self, office_id: str, card_id: str) -> bool:
        """Whether any account of the office was reported with the card."""
        ...

    async def note_card_seen(
        self, account_id: str, office_id: str, card_id: str, at: dt.datetime
    ) -> None:
        """Remember that the account's ID was reported with the card."""
        ...

    async def record_sync_outcome(
        self,
        issuer: str,
        account_id: str | None,
        kind: OutcomeKind,
        error_code: str | None,
        at: dt.datetime,
    ) -> None:
        """Add a sync run's outcome to its issuer's health window."""
        ...

    async def issuer_health(self, issuer: str, now: dt.datetime) -> IssuerHealth:
        """The issuer's health judged from its window of outcomes."""
        ...

    async def claim_issuer_probe(self, issuer: str, now: dt.datetime, until: dt.datetime) -> bool:
        """Take the down issuer's probe sync until ``until``; False if another holds it."""

    async def accounts_due_for_sync(self, now: dt.datetime, interval: dt.timedelta) -> list[str]:
        """Live accounts synced by API or login whose last sync is older than ``interval``
        (or never happened) and that no sync holds now, the longest waiting first; of an
        issuer that is down, only its probe when that is due."""
        ...

    async def enqueue_job(
        self,
        kind: str,
        payload: dict[str, object],
        *,
        lock_key: str | None,
        run_at: dt.datetime,
        once: bool = True,
    ) -> None:
        """Queue a job. Jobs of one lock key run one at a time, in the order queued.

        With ``once``, one already queued with the same kind and lock key is kept instead
        (moved earlier if this one is due sooner), so a burst asks for the work once;
        without it, each job is its own work (one message each)."""
        ...

    async def running_lock_keys(self, kind: str) -> set[str]:
        """The lock keys of the jobs of ``kind`` a runner carries out now."""
        ...

    async def take_queued_job(
        self, kind: str, lock_key: str, now: dt.datetime, until: dt.datetime
    ) -> int | None:
        """Claim a due queued job of ``kind`` for ``lock_key`` (as a runner would); its id."""
        ...

    async def settle_job(self, job_id: int, *, retry_at: dt.datetime | None) -> None:
        """A taken job is done, or queued again for ``retry_at``."""
        ...


class UnitOfWork(Protocol):
    """One transaction; rolls back on exit unless ``commit`` was called."""

    @property
    def repo(self) -> Repository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def commit(self) -> None: ...
