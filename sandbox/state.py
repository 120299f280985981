"""In-memory state of one sandbox: clock, clients, and per-issuer users, cards and grants.

One `SandboxState` is shared by the Amex and JCB apps of one `create_app` call, so
the clock, the settings and the client registry are common to both issuers, while
users, cards, grants, tokens and faults belong to one issuer.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import httpx

from sandbox.statements import StatementLedger

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


@dataclass
class SandboxSettings:
    """Knobs of the control API (`POST /control/settings`)."""

    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL
    jcb_confirmation_delay: int = DEFAULT_JCB_CONFIRMATION_DELAY
    webhook_retry_delay: float = 0.5


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
        }


@dataclass
class AuthorizationRequest:
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
class AuthorizationCode:
    """A single-use authorization code and what it was bound to."""

    code: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    grant_id: str
    expires_at: float
    used: bool = False


@dataclass
class AccessToken:
    """A bearer token of the resource API."""

    token: str
    client_id: str
    grant_id: str
    family: str
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    """A rotating, single-use refresh token."""

    token: str
    client_id: str
    grant_id: str
    family: str
    used: bool = False
    revoked: bool = False


@dataclass
class Fault:
    """A failure to inject into the next `times` requests of one path."""

    path: str
    kind: Literal["500", "429", "slow", "timeout", "malformed_json"]
    times: int
    retry_after: int = 1
    delay: float = 3.0
    after: int = 0  # requests of the path served normally before the fault strikes


@dataclass
class LegacySession:
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
    requests: dict[str, AuthorizationRequest] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    sessions: dict[str, LegacySession] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)

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
    ) -> None:
        """Create the state and seed the demo data.

        Args:
            clients: OAuth clients to register; ``None`` registers the demo client.
            control_key: If set, the control API requires it in ``X-Sandbox-Key``.
            webhook_transport: httpx transport for webhook deliveries (tests inject one).
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
        self._seq = itertools.count(1)
        self.reset()

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
        return next(self._seq)

    def current_seq(self) -> int:
        """The sequence number of a snapshot taken now (takes a fresh number)."""
        return next(self._seq)

    def now(self) -> float:
        """The sandbox clock."""
        return self.clock.now()


def new_id(prefix: str, nbytes: int = 12) -> str:
    """An unguessable identifier such as ``grant_...``."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"
