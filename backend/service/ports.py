"""Ports of the service layer: what the use cases need from the outside world.

Adapters (``connectors/issuers``) implement these Protocols; tests use fakes that
implement the same Protocols. Only standard-library types cross this boundary.

Error tree of the issuer port (adapters translate library exceptions into these
at their boundary, ``raise X(...) from exc``)::

    IssuerError
    ├── ConsentRevoked        the grant was stopped at the issuer (member site, RFC 7009)
    ├── ReauthRequired        tokens expired or refused; the person must consent again
    ├── ConsentRefused        the issuer refused the grant itself (R5, R10, R13 at the issuer)
    ├── LegacyLoginFailed     issuer-website ID/password refused (legacy sync)
    ├── RateLimited           429; ``retry_after`` seconds, when the issuer said
    ├── IssuerUnavailable     5xx, timeouts, connection errors
    └── BadPayload            the issuer answered something we cannot read
        └── InvalidCursor     the issuer no longer knows our sync cursor
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from backend.domain.vocabulary import RefusalCode

IssuerName = Literal["amex", "jcb"]


# --------------------------------------------------------------------------- errors
class IssuerError(Exception):
    """Base of every error an issuer adapter raises."""

    code: str = RefusalCode.ISSUER_ERROR

    def __init__(self, message: str = "", *, issuer: str | None = None) -> None:
        super().__init__(message or self.code)
        self.issuer = issuer


class ConsentRevoked(IssuerError):
    code = RefusalCode.CONSENT_REVOKED


class ReauthRequired(IssuerError):
    code = RefusalCode.REAUTH_REQUIRED


class ConsentRefused(IssuerError):
    code = RefusalCode.CONSENT_REFUSED


class LegacyLoginFailed(IssuerError):
    code = RefusalCode.LEGACY_LOGIN_FAILED


class RateLimited(IssuerError):
    code = RefusalCode.RATE_LIMITED

    def __init__(
        self, message: str = "", *, issuer: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, issuer=issuer)
        self.retry_after = retry_after


class IssuerUnavailable(IssuerError):
    code = RefusalCode.ISSUER_UNAVAILABLE


class BadPayload(IssuerError):
    code = RefusalCode.BAD_PAYLOAD


class InvalidCursor(BadPayload):
    """The issuer no longer knows the sync cursor; a sync starts again from the beginning."""

    code = RefusalCode.INVALID_CURSOR


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class TokenSet:
    """OAuth tokens of one grant. Never logged; stored encrypted."""

    access_token: str
    refresh_token: str | None
    expires_at: int | None  # epoch seconds
    scope: str = ""
    # When the consent behind these tokens ends (epoch seconds), if the issuer says.
    consent_expires_at: int | None = None

    def __repr__(self) -> str:  # secrets never reach a log line through repr()
        return f"TokenSet(expires_at={self.expires_at!r}, scope={self.scope!r})"


TokenSaver = Callable[[TokenSet], Awaitable[None]]
"""Called by the adapter with a rotated token pair; must persist it atomically."""


@dataclass(frozen=True)
class IssuerCard:
    """A card as the issuer reports it."""

    card_ref: str  # the issuer's stable card id
    product: str  # amex_business | amex_business_gold | amex_business_platinum | jcb_* ...
    masked_number: str
    holder_name: str
    role: Literal["basic", "supplementary"] = "basic"
    basic_card_ref: str | None = None
    status: Literal["active", "replaced"] = "active"
    replaced_by: str | None = None  # R7: the successor after an upgrade or downgrade


@dataclass(frozen=True)
class GrantInfo:
    """Who consented and which cards the grant covers (``GET /api/v1/me``)."""

    subject: str  # Amex online-service ID or MyJCB ID
    subject_kind: Literal["single", "combined"]  # R6: combined = MyJCB combined login
    cards: tuple[IssuerCard, ...]
    # The issuer's id of this grant: its webhooks name it, so an event about an
    # earlier grant of the same card or ID never touches a newer link.
    grant_id: str | None = None


@dataclass(frozen=True)
class IssuerStatement:
    """One statement line (明細) as an issuer returns it."""

    transaction_id: str | None  # None for legacy (scraped) lines, which carry no id
    card_ref: str
    use_date: dt.date
    posted_date: dt.date | None
    merchant: str
    amount_jpy: int
    foreign_amount: str | None = None  # decimal as text, never float
    foreign_currency: str | None = None
    status: Literal["pending", "confirmed"] = "confirmed"
    holder_name: str | None = None


@dataclass(frozen=True)
class StatementPage:
    """One page of an incremental fetch, like Plaid's ``/transactions/sync``."""

    added: tuple[IssuerStatement, ...]
    modified: tuple[IssuerStatement, ...]
    removed: tuple[str, ...]  # transaction ids
    next_cursor: str
    has_more: bool


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the service keeps to finish an authorization: the URL, state and PKCE verifier.

    ``issuer_identifier`` is the issuer's identifier (RFC 8414 ``issuer``): the callback
    accepts only an authorization response whose RFC 9207 ``iss`` names it.
    """

    url: str
    state: str
    code_verifier: str
    issuer_identifier: str


@dataclass(frozen=True)
class LinkStatus:
    status: Literal["active", "stopped"]


@dataclass
class LegacyStatements:
    """What the legacy ID/password method sees: every card on the login, no ids."""

    cards: list[IssuerCard] = field(default_factory=list)
    statements: list[IssuerStatement] = field(default_factory=list)


StatementRowKind = Literal["purchase", "adjustment", "payment"]


@dataclass(frozen=True)
class ParsedStatementGroup:
    """The rows of one card in a statement file (Amex: by 会員番号; JCB: by ご利用者).

    ``lines`` and ``kinds`` go with ``rows`` one for one (empty: every row a purchase,
    lines unknown). A ``payment`` row pays an earlier bill and is no card's use; the
    card-less rows of a file come in a group with an empty ``key``. ``relation`` and
    ``family_number`` tell a MyJCB user (本人, 家族N) apart.
    """

    key: str
    rows: tuple[IssuerStatement, ...]
    lines: tuple[int, ...] = ()
    kinds: tuple[StatementRowKind, ...] = ()
    relation: Literal["principal", "family"] | None = None
    family_number: int | None = None
    holder_name: str | None = None

    def kind_of(self, index: int) -> StatementRowKind:
        return self.kinds[index] if index < len(self.kinds) else "purchase"

    def line_of(self, index: int) -> int | None:
        return self.lines[index] if index < len(self.lines) else None


# --------------------------------------------------------------------------- port
class IssuerGateway(Protocol):
    """One card issuer, reached by API (OAuth) and by the legacy ID/password method."""

    issuer: IssuerName

    def authorization_request(self, *, redirect_uri: str) -> AuthorizationRequest:
        """Build an authorization URL with a fresh ``state`` and PKCE (S256) verifier."""
        ...

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Trade an authorization code for tokens."""
        ...

    async def grant_info(self, tokens: TokenSet, save: TokenSaver) -> GrantInfo:
        """The consenting subject and the cards the grant covers."""
        ...

    async def sync_statements(
        self, tokens: TokenSet, save: TokenSaver, cursor: str | None, *, count: int = 500
    ) -> StatementPage:
        """One page of statement changes after ``cursor`` (None = from the start)."""
        ...

    async def link_status(self, tokens: TokenSet, save: TokenSaver) -> LinkStatus:
        """Whether the grant is still registered at the issuer (R10, R16)."""
        ...

    async def revoke(self, tokens: TokenSet) -> None:
        """Revoke the tokens (RFC 7009)."""
        ...

    async def legacy_fetch(self, login_id: str, password: str) -> LegacyStatements:
        """The old method: log in to the issuer website and read every statement."""
        ...
