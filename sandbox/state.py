"""The state of one sandbox: clock, clients, and per-issuer users, cards and grants.

One `SandboxState` is shared by the Amex and JCB apps of one `create_app` call, so
the clock, the settings and the client registry are common to both issuers, while
users, cards, grants, tokens and faults belong to one issuer. Routes work on it in
memory; given a state file, it is saved there after every change (`sandbox.store`)
and read back at the next start.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from sandbox.statements import StatementLedger
from sandbox.store import JOURNALED, Row, SandboxStore, Tracked, TrackedDict

Issuer = Literal["amex", "jcb"]
ISSUERS: tuple[Issuer, ...] = ("amex", "jcb")

GrantStatus = Literal["pending", "active", "stopped"]
CardRole = Literal["basic", "supplementary"]
CardStatus = Literal["active", "replaced"]

AMEX_API_PRODUCTS = frozenset({"amex_business", "amex_business_gold", "amex_business_platinum"})
JCB_API_PRODUCTS = frozenset({"jcb_general", "jcb_gold", "jcb_platinum", "jcb_corporate"})
PRODUCTS: dict[Issuer, frozenset[str]] = {
    "amex": AMEX_API_PRODUCTS | {"amex_personal_green"},
    "jcb": JCB_API_PRODUCTS | {"jcb_excluded"},
}

DEFAULT_ACCESS_TOKEN_TTL = 900
DEFAULT_JCB_CONFIRMATION_DELAY = 3600
AUTHORIZATION_CODE_TTL = 60
AUTHORIZATION_REQUEST_TTL = 600
LEGACY_SESSION_TTL = 1800


@dataclass
class ClientRegistration:
    """An OAuth client registered at both simulated issuers.

    Attributes:
        client_id: The public client identifier.
        client_secret: The secret for ``client_secret_basic`` / ``client_secret_post``.
        redirect_uris: Redirect URIs, matched exactly (no prefix or pattern match).
        name: Shown on consent pages and on the member site's list of links.
        webhook_url: Where signed webhook events are POSTed, if anywhere; ``{issuer}`` in it
            is replaced by ``amex`` or ``jcb``.
        webhook_secret: The HMAC-SHA256 key of the ``Issuer-Signature`` header.
        webhook_secrets: A key per issuer (``amex``, ``jcb``), used instead of
            ``webhook_secret`` for that issuer's events: a receiver that checks the
            key of the path an event arrives at then refuses an event of the other issuer.
    """

    client_id: str
    client_secret: str
    redirect_uris: list[str]
    name: str = "renkei"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_secrets: dict[str, str] = field(default_factory=dict)

    def webhook_secret_for(self, issuer: str) -> str | None:
        """The key that signs this issuer's events to this client."""
        return self.webhook_secrets.get(issuer, self.webhook_secret)


DEMO_CLIENT = ClientRegistration(
    client_id="renkei-demo",
    client_secret="renkei-demo-secret",
    redirect_uris=[
        "http://127.0.0.1:8000/api/v1/oauth/callback",
        "http://localhost:8000/api/v1/oauth/callback",
    ],
)


@dataclass
class SandboxClock:
    """Wall time plus an offset that only grows, so expiry and delays can be fast-forwarded."""

    offset: float = 0.0

    def now(self) -> float:
        """Seconds since the epoch on the sandbox clock."""
        return time.time() + self.offset

    def today(self) -> date:
        """The sandbox clock's date (UTC)."""
        return datetime.fromtimestamp(self.now(), tz=UTC).date()

    def advance(self, seconds: float) -> None:
        """Move the clock forward; it never goes back, or sync cursors would lie."""
        self.offset += max(0.0, seconds)


RefreshPolicy = Literal["strict", "grace"]
DAY_SECONDS = 86_400
# How long a consent lasts before the person must give it again. Neither issuer
# publishes its figure for API links; these follow the two shapes seen in practice:
# a yearly renewal (Amex, as for its card-member consents) and the 90-day
# re-authentication of open-banking regimes (JCB), so both paths get exercised.
DEFAULT_CONSENT_LIFETIME_DAYS: dict[str, int] = {"amex": 365, "jcb": 90}
DEFAULT_EXPIRING_NOTICE_DAYS = 14
DEFAULT_REFRESH_GRACE_SECONDS = 60


@dataclass
class IssuerSettings:
    """Knobs of one issuer (`POST /control/settings` with ``issuer``).

    Attributes:
        consent_lifetime_days: Days from consent to the end of the grant; 0: no end.
        expiring_notice_days: Days before the end at which ``link.expiring`` is sent.
        refresh_policy: ``strict``: a refresh token works once, and a second use
            revokes its whole family (RFC 9700 §4.14.2). ``grace``: the previous
            refresh token is still accepted for ``refresh_grace_seconds`` after it was
            used (a client whose answer got lost retries), as FAPI 2.0 allows.
        refresh_grace_seconds: The window of the ``grace`` policy.
    """

    consent_lifetime_days: int = 365
    expiring_notice_days: int = DEFAULT_EXPIRING_NOTICE_DAYS
    refresh_policy: RefreshPolicy = "strict"
    refresh_grace_seconds: int = DEFAULT_REFRESH_GRACE_SECONDS


def default_issuer_settings() -> dict[str, IssuerSettings]:
    """Each issuer's settings as a new sandbox starts with them."""
    return {
        issuer: IssuerSettings(consent_lifetime_days=days)
        for issuer, days in DEFAULT_CONSENT_LIFETIME_DAYS.items()
    }


@dataclass
class SandboxSettings:
    """Knobs of the control API (`POST /control/settings`)."""

    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL
    jcb_confirmation_delay: int = DEFAULT_JCB_CONFIRMATION_DELAY
    webhook_retry_delay: float = 0.5
    issuers: dict[str, IssuerSettings] = field(default_factory=default_issuer_settings)

    def of(self, issuer: str) -> IssuerSettings:
        """The settings of one issuer."""
        return self.issuers.setdefault(issuer, IssuerSettings())


@dataclass
class User:
    """An online-service ID (Amex) or MyJCB ID with its password."""

    user_id: str
    password: str
    # R6: a MyJCB combined login groups other IDs; logging in with it sees their cards.
    combined_of: list[str] = field(default_factory=list)


@dataclass
class Card:
    """A card held under one user ID, with its generated statements."""

    card_id: str
    user_id: str
    product: str
    holder_name: str
    masked_number: str
    role: CardRole = "basic"
    basic_card_id: str | None = None
    # R15: an Amex supplementary card is visible to the ID only once registered to it.
    registered: bool = True
    status: CardStatus = "active"
    replaced_by: str | None = None
    ledger: StatementLedger = field(default_factory=StatementLedger)

    def as_json(self) -> dict[str, Any]:
        """The contract's `Card` object."""
        return {
            "card_id": self.card_id,
            "product": self.product,
            "masked_number": self.masked_number,
            "holder_name": self.holder_name,
            "role": self.role,
            "basic_card_id": self.basic_card_id,
            "status": self.status,
            "replaced_by": self.replaced_by,
        }


@dataclass
class Grant:
    """One consent given by a user to a client (the 'link' of the member site)."""

    grant_id: str
    issuer: Issuer
    client_id: str
    subject: str
    subject_kind: Literal["single", "combined"]
    # Amex: the one chosen card (R13). JCB: empty, the grant follows the ID's cards (R9).
    card_ids: list[str]
    scope: str
    # JCB: the IDs the login covered at consent time (itself and any grouped IDs, R6).
    user_ids: list[str] = field(default_factory=list)
    status: GrantStatus = "pending"
    created_at: float = 0.0
    stopped_at: float | None = None
    stopped_by: str | None = None
    # When the consent ends (sandbox clock); None: it never does.
    expires_at: float | None = None
    # When `link.expiring` was sent ahead of the end (once per grant).
    expiring_sent_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The control API's view of a grant."""
        return {
            "grant_id": self.grant_id,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "subject": self.subject,
            "subject_kind": self.subject_kind,
            "card_ids": list(self.card_ids),
            "status": self.status,
            "created_at": self.created_at,
            "stopped_at": self.stopped_at,
            "stopped_by": self.stopped_by,
            "expires_at": self.expires_at,
            "expiring_sent_at": self.expiring_sent_at,
        }

    def in_renewal_window(self, now: float, notice_days: int) -> bool:
        """Whether the consent is close enough to its end to be given again in place."""
        if self.expires_at is None:
            return False
        return now >= self.expires_at - notice_days * DAY_SECONDS


@dataclass
class AuthorizationRequest(Tracked):
    """A consent flow in progress in a person's browser, keyed by its `txn`."""

    txn: str
    client_id: str
    redirect_uri: str
    state: str
    code_challenge: str
    scope: str
    expires_at: float
    stage: Literal["login", "consent", "cards", "done"] = "login"
    user_id: str | None = None


@dataclass
class AuthorizationCode(Tracked):
    """A single-use authorization code and what it was bound to."""

    code: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    grant_id: str
    expires_at: float
    used: bool = False


@dataclass
class AccessToken(Tracked):
    """A bearer token of the resource API."""

    token: str
    client_id: str
    grant_id: str
    family: str
    expires_at: float
    revoked: bool = False
    # The refresh token issued with it.
    refresh_token: str | None = None


@dataclass
class RefreshToken(Tracked):
    """A rotating, single-use refresh token."""

    token: str
    client_id: str
    grant_id: str
    family: str
    used: bool = False
    revoked: bool = False
    used_at: float | None = None
    # The refresh token its use produced (the grace policy retires it on a retry).
    successor: str | None = None


@dataclass
class Fault(Tracked):
    """A failure to inject into the next `times` requests of one path."""

    path: str
    kind: Literal["500", "429", "slow", "timeout", "malformed_json"]
    times: int
    retry_after: int = 1
    delay: float = 3.0
    after: int = 0  # requests of the path served normally before the fault strikes


@dataclass
class LegacySession(Tracked):
    """A logged-in session of the issuer website (legacy download or member site)."""

    user_id: str
    expires_at: float


@dataclass
class IssuerData:
    """Everything that belongs to one issuer."""

    issuer: Issuer
    users: dict[str, User] = field(default_factory=dict)
    cards: dict[str, Card] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    requests: dict[str, AuthorizationRequest] = field(default_factory=TrackedDict)
    codes: dict[str, AuthorizationCode] = field(default_factory=TrackedDict)
    access_tokens: dict[str, AccessToken] = field(default_factory=TrackedDict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=TrackedDict)
    sessions: dict[str, LegacySession] = field(default_factory=TrackedDict)
    faults: dict[str, Fault] = field(default_factory=TrackedDict)
    # Rows of the journaled collections changed since the last save (sandbox.store).
    changes: set[Row] = field(default_factory=set)

    def __post_init__(self) -> None:
        for name in JOURNALED:
            collection = getattr(self, name)
            assert isinstance(collection, TrackedDict)
            collection.bind(name, self.issuer, self.changes)

    def clear(self) -> None:
        """Forget everything of this issuer (used by reset)."""
        for mapping in (
            self.users,
            self.cards,
            self.grants,
            self.requests,
            self.codes,
            self.access_tokens,
            self.refresh_tokens,
            self.sessions,
            self.faults,
        ):
            mapping.clear()

    def cards_of_user(self, user_id: str) -> list[Card]:
        """Cards held under one ID, in a stable order."""
        return sorted(
            (card for card in self.cards.values() if card.user_id == user_id),
            key=lambda card: card.card_id,
        )

    def login_user_ids(self, user_id: str) -> list[str]:
        """The IDs whose cards a login sees: itself plus any IDs it groups (R6)."""
        user = self.users[user_id]
        return [user_id, *(other for other in user.combined_of if other != user_id)]

    def login_cards(self, user_id: str) -> list[Card]:
        """Every card a website login shows, registered ones only (R15)."""
        return [
            card
            for uid in self.login_user_ids(user_id)
            for card in self.cards_of_user(uid)
            if card.registered
        ]

    def grant_cards(self, grant: Grant) -> list[Card]:
        """The cards a grant covers (R9: JCB follows every card of the ID)."""
        if grant.issuer == "amex":
            return [self.cards[cid] for cid in grant.card_ids if cid in self.cards]
        # R1: a card MyJCB cannot take is never covered by a JCB grant.
        return [
            card
            for uid in grant.user_ids or [grant.subject]
            for card in self.cards_of_user(uid)
            if card.registered and card.product != "jcb_excluded"
        ]

    def active_grant_holding(self, client_id: str, card_id: str) -> Grant | None:
        """The active grant of ``client_id`` that already links ``card_id`` (R5)."""
        for grant in self.grants.values():
            active = grant.status == "active" and grant.client_id == client_id
            if active and card_id in grant.card_ids:
                return grant
        return None


@dataclass
class WebhookDelivery:
    """The outcome of one webhook event sent to one client."""

    event_id: str
    client_id: str
    type: str
    attempts: int = 0
    delivered: bool = False
    last_status: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The control API's view of a delivery."""
        return {
            "event_id": self.event_id,
            "client_id": self.client_id,
            "type": self.type,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "last_status": self.last_status,
        }


@dataclass
class DueNotification:
    """A `statements.available` event to send once JCB's delay has passed (R9)."""

    due_at: float
    grant_id: str
    card_ids: list[str]


class SandboxState:
    """All the state of one sandbox (both issuers), kept in memory."""

    def __init__(
        self,
        *,
        clients: list[ClientRegistration] | None = None,
        control_key: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        state_file: Path | None = None,
    ) -> None:
        """Create the state: read back from ``state_file``, or seeded with the demo data.

        Args:
            clients: OAuth clients to register; ``None`` registers the demo client.
            control_key: If set, the control API requires it in ``X-Sandbox-Key``.
            webhook_transport: httpx transport for webhook deliveries (tests inject one).
            state_file: The SQLite file the state is kept in; ``None`` keeps it in
                memory only (a restart starts from the demo data again).
        """
        registrations = [DEMO_CLIENT] if clients is None else clients
        self.clients: dict[str, ClientRegistration] = {c.client_id: c for c in registrations}
        self.control_key = control_key
        self.webhook_transport = webhook_transport
        self.clock = SandboxClock()
        self.settings = SandboxSettings()
        self.issuers: dict[Issuer, IssuerData] = {}
        self.generation = 0
        self.deliveries: list[WebhookDelivery] = []
        self.due_notifications: list[DueNotification] = []
        self.background: set[asyncio.Task[None]] = set()
        self.seq = 0
        self.pruned_at = 0.0  # when spent credentials were last dropped (sandbox.expiry)
        # Keys the member site's form tokens; kept, so a form survives a restart too.
        self.site_key = secrets.token_bytes(32)
        self.store = SandboxStore(state_file) if state_file is not None else None
        if self.store is not None and not self.store.is_empty():
            for issuer in ISSUERS:
                self.issuers[issuer] = IssuerData(issuer=issuer)
            self.store.load(self)
        else:
            self.reset()
            self.persist()

    def persist(self) -> None:
        """Save what changed to the state file, if there is one."""
        if self.store is not None:
            self.store.save(self)

    def reset(self) -> None:
        """Back to the demo data; registered clients are configuration and stay."""
        from sandbox.demo import seed_demo_data

        self.generation += 1
        self.clock = SandboxClock()
        self.settings = SandboxSettings()
        # Cleared in place: the routers hold on to these objects.
        for issuer in ISSUERS:
            if issuer in self.issuers:
                self.issuers[issuer].clear()
            else:
                self.issuers[issuer] = IssuerData(issuer=issuer)
        self.deliveries.clear()
        self.due_notifications.clear()
        seed_demo_data(self)

    def next_seq(self) -> int:
        """A number that orders every change of statements, across both issuers."""
        self.seq += 1
        return self.seq

    def current_seq(self) -> int:
        """The sequence number of a snapshot taken now (takes a fresh number)."""
        return self.next_seq()

    def now(self) -> float:
        """The sandbox clock."""
        return self.clock.now()


def new_id(prefix: str, nbytes: int = 12) -> str:
    """An unguessable identifier such as ``grant_...``."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"
