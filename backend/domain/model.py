"""Entities of the card-link domain.

Plain dataclasses: the storage layer maps them imperatively, so nothing here knows
about a database. Identifiers are strings (UUID text) so that they read the same in
SQLite, PostgreSQL, logs and URLs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

# The shared words live in vocabulary; the domain's modules name them from here too.
from backend.domain.vocabulary import AccountStatus as AccountStatus
from backend.domain.vocabulary import CardRole as CardRole
from backend.domain.vocabulary import Issuer as Issuer
from backend.domain.vocabulary import LinkStatus as LinkStatus
from backend.domain.vocabulary import Role as Role
from backend.domain.vocabulary import SyncMethod as SyncMethod


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StatementStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"


class StatementSource(StrEnum):
    LEGACY = "legacy"
    API = "api"
    UPLOAD = "upload"


class JobKind(StrEnum):
    """Work queued in the database for any worker to take."""

    SYNC_ACCOUNT = "sync_account"
    # One outbox row sent to its subscriber, in its account's order.
    DELIVER_WEBHOOK = "deliver_webhook"
    # The work a Slack request leaves after its ack (bot.slack), run by any worker.
    SLACK_REQUEST = "slack_request"
    # One message to post to Slack (bot.slack), in its channel's order.
    SLACK_NOTICE = "slack_notice"
    # Support handoffs and their messages passed on between Slack and the conversations.
    SLACK_HANDOFFS = "slack_handoffs"


class AuthorizationPurpose(StrEnum):
    REGISTER = "register"  # R11: a new API account
    SWITCH = "switch"  # R12: an existing legacy account switched in place
    REAUTH = "reauth"  # an expired or revoked link renewed in place


@dataclass
class Office:
    """事業所: one business inside the accounting service."""

    name: str
    id: str = field(default_factory=new_id)
    created_at: dt.datetime = field(default_factory=utcnow)


@dataclass
class Membership:
    """A member's role in one office; members are identified by email."""

    office_id: str
    email: str
    role: Role
    id: str = field(default_factory=new_id)


@dataclass
class Invitation:
    """An office admin's offer of a role to an email; a membership only once accepted."""

    office_id: str
    email: str
    role: Role
    invited_by: str
    created_at: dt.datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)


@dataclass
class Rollout:
    """R3/R4: API linking released for one office and issuer."""

    office_id: str
    issuer: Issuer
    released_at: dt.datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)


@dataclass
class Card:
    """A card, in one of two kinds.

    The issuer's card (``office_id`` None) is the physical card as the issuer reports it
    (consent, grant info, legacy login): the same object whichever offices sync it (R14),
    and the identity R5 keeps one link on. Nothing a caller sends changes it.

    A declared card (``office_id`` set) is what one office said about a card for an
    account fed by statement files: that office's own record, seen by it alone. It
    becomes the issuer's card only when the issuer reports that card in a consent.
    """

    issuer: Issuer
    card_ref: str  # the issuer's stable card id (as declared, for a declared card)
    product: str
    masked_number: str
    holder_name: str
    role: CardRole = CardRole.BASIC
    basic_card_id: str | None = None
    successor_id: str | None = None  # R7: the card that replaced this one
    office_id: str | None = None  # set only on a card an office declared
    id: str = field(default_factory=new_id)

    @property
    def declared(self) -> bool:
        return self.office_id is not None

    @property
    def last_digits(self) -> str:
        digits = "".join(ch for ch in self.masked_number if ch.isdigit())
        return digits[-4:]


@dataclass
class Account:
    """口座: where one card's statements are synced, in one office."""

    office_id: str
    name: str
    issuer: Issuer
    card_id: str | None  # None only while a new API account waits for consent (R11)
    sync_method: SyncMethod
    status: AccountStatus = AccountStatus.ACTIVE
    legacy_login_id: bytes | None = None  # encrypted; erased after a switch (R2)
    legacy_password: bytes | None = None  # encrypted; erased after a switch (R2)
    sync_cursor: str | None = None
    sync_lease_until: dt.datetime | None = None  # one sync at a time, across processes
    last_synced_at: dt.datetime | None = None
    last_error: str | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    deleted_at: dt.datetime | None = None
    id: str = field(default_factory=new_id)

    @property
    def is_deleted(self) -> bool:
        return self.status == AccountStatus.DELETED

    @property
    def has_legacy_credentials(self) -> bool:
        return self.legacy_login_id is not None and self.legacy_password is not None


@dataclass
class ApiLink:
    """An issuer grant (OAuth consent) attached to one account."""

    account_id: str
    office_id: str
    issuer: Issuer
    card_id: str  # the account's card; R5: at most one active Amex link per card
    subject: str  # Amex online-service ID or MyJCB ID; R6: one account per MyJCB ID
    tokens: bytes  # encrypted TokenSet
    status: LinkStatus = LinkStatus.ACTIVE
    expires_at: dt.datetime | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    revoked_at: dt.datetime | None = None
    issuer_grant_id: str | None = None  # the issuer's id of the grant, named by its webhooks
    # When the issuer's consent ends (the person must consent again), if it does.
    consent_expires_at: dt.datetime | None = None
    # The consent warning already sent (days before the end: 14, 7 or 1).
    consent_warned_days: int | None = None
    id: str = field(default_factory=new_id)


@dataclass
class PendingAuthorization:
    """An OAuth authorization under way: state and PKCE verifier, kept in the database."""

    state: str
    account_id: str
    office_id: str
    issuer: Issuer
    purpose: AuthorizationPurpose
    code_verifier: bytes  # encrypted
    redirect_uri: str
    requested_by: str
    expires_at: dt.datetime
    return_url: str | None = None  # where the callback page sends the person back (a path)
    used_at: dt.datetime | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)
    requested_by_admin: bool = False
    # The issuer's authorization URL: renkei's start page sends the browser there once the
    # browser has shown it belongs to the member who started.
    issuer_url: str | None = None
    # RFC 9207: the ``iss`` the callback must carry (the issuer this was started with).
    expected_iss: str | None = None
    # The one-time code shown in the member's own conversation (a hash, never the code).
    sign_in_code_hash: str | None = None
    sign_in_code_expires_at: dt.datetime | None = None
    sign_in_attempts: int = 0
    sign_in_used_at: dt.datetime | None = None
    # A hash of the HttpOnly cookie given to the browser that proved it is the member's.
    browser_binding: str | None = None


@dataclass
class NewStatement:
    """明細 not stored yet: a plain object, cheap to make by the thousand.

    ``Statement`` below is the same with the storage layer's tracking (mapped onto its
    table), which costs several times more per object; a first sync inserts the new
    lines of a page as these, in one statement.
    """

    account_id: str
    card_id: str
    use_date: dt.date
    merchant: str
    amount_jpy: int
    source: StatementSource
    status: StatementStatus = StatementStatus.CONFIRMED
    issuer_txn_id: str | None = None
    posted_date: dt.date | None = None
    foreign_amount: str | None = None
    foreign_currency: str | None = None
    holder_name: str | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    updated_at: dt.datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)


class Statement(NewStatement):
    """明細: one card usage line in one account, as stored."""


@dataclass
class SyncRun:
    account_id: str
    method: SyncMethod
    status: str = "running"  # running | succeeded | failed
    added: int = 0
    modified: int = 0
    removed: int = 0
    error_code: str | None = None
    started_at: dt.datetime = field(default_factory=utcnow)
    finished_at: dt.datetime | None = None
    id: str = field(default_factory=new_id)


@dataclass
class Event:
    """Something that happened; the outbox delivers it as a signed webhook."""

    type: str
    payload: dict[str, object]
    office_id: str | None = None
    account_id: str | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    id: str = field(default_factory=lambda: "evt_" + new_id())
