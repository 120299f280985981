"""The flows' port of the back end: what a guided step may ask of it.

``connectors.backend_client`` implements it over the back end's REST API (in process
in the embedded default). Only plain values cross it.

Errors::

    BackendError
    ├── BackendRefusal       the back end refused, with its stable code and rule (4xx)
    └── BackendUnavailable   no answer, or a 5xx: the step can be retried
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from backend.domain.vocabulary import (
    AccountStatus,
    CardRole,
    EventType,
    Issuer,
    LinkCheck,
    LinkStatus,
    Role,
    SyncMethod,
    SyncStatus,
)


class BackendError(Exception):
    """Base of the port's errors."""


class BackendRefusal(BackendError):
    """The back end said no: ``code`` (e.g. ``card_already_linked``) and ``rule`` (``R5``).

    ``code`` is a string: the back end may refuse with a code newer than this side
    knows. Compare it with ``RefusalCode`` members, never with a bare string.
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        rule: str | None = None,
        details: dict[str, Any] | None = None,
        status: int = 409,
    ) -> None:
        super().__init__(message or code)
        self.code = code
        self.rule = rule
        self.details = details or {}
        self.status = status


class BackendUnavailable(BackendError):
    """The back end did not answer, or failed; nothing was refused, try again."""


@dataclass(frozen=True)
class OfficeInfo:
    id: str
    name: str
    role: Role
    released_issuers: tuple[Issuer, ...] = ()
    admins: tuple[str, ...] = ()  # tells apart two offices of one name


@dataclass(frozen=True)
class InvitationInfo:
    """An invitation waiting for the member: who invites them where, at which role."""

    id: str
    office_id: str
    office_name: str
    role: Role
    invited_by: str


@dataclass(frozen=True)
class CardInfo:
    id: str
    issuer: Issuer
    masked_number: str
    product: str
    holder_name: str
    role: CardRole = CardRole.BASIC
    basic_card_id: str | None = None
    successor_id: str | None = None
    api_eligible: bool = True
    card_ref: str = ""


@dataclass(frozen=True)
class AccountInfo:
    id: str
    office_id: str
    name: str
    issuer: Issuer
    sync_method: SyncMethod
    status: AccountStatus
    card: CardInfo | None
    last_synced_at: str | None = None
    last_error: str | None = None
    link_status: LinkStatus | None = None
    has_legacy_credentials: bool = False
    consent_ends_on: str | None = None  # the day the issuer's consent ends (Japan time)
    consent_expiring: bool = False  # warned of that end, not renewed yet


@dataclass(frozen=True)
class CardUseInfo:
    account_id: str | None
    office_id: str | None
    office_name: str | None
    sync_method: SyncMethod
    api_linked: bool


@dataclass(frozen=True)
class AuthorizationStart:
    """renkei's start link and the one-time code that opens it in a browser not signed in;
    the code is shown in the member's own conversation only."""

    account_id: str
    authorization_url: str
    sign_in_code: str = ""


@dataclass(frozen=True)
class SyncInfo:
    status: SyncStatus
    added: int = 0
    modified: int = 0
    removed: int = 0
    error_code: str | None = None


@dataclass(frozen=True)
class UploadInfo:
    added: int
    duplicates: int
    skipped_cards: tuple[str, ...] = ()
    payments: int = 0
    adjustments: int = 0


@dataclass(frozen=True)
class EventInfo:
    id: str
    type: EventType
    account_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""


@dataclass(frozen=True)
class IssuerSites:
    issuer: Issuer
    member_site_url: str
    card_registration_url: str | None = None
    external_services_url: str | None = None


@dataclass(frozen=True)
class IssuerHealthInfo:
    """How an issuer answers renkei's syncs: ``healthy``, ``degraded`` or ``down``."""

    issuer: str
    state: str
    failing_since: str | None = None


class BackendPort(Protocol):
    """The back end as one member sees it (every call carries that member's rights)."""

    async def offices(self) -> list[OfficeInfo]: ...

    async def office(self, office_id: str) -> OfficeInfo: ...

    async def invitations(self) -> list[InvitationInfo]: ...

    async def answer_invitation(self, invitation_id: str, accept: bool) -> None: ...

    async def accounts(self, office_id: str) -> list[AccountInfo]: ...

    async def account(self, account_id: str) -> AccountInfo: ...

    async def office_cards(self, office_id: str) -> list[CardInfo]: ...

    async def card_uses(self, office_id: str, card_id: str) -> list[CardUseInfo]: ...

    async def register_api_account(
        self,
        office_id: str,
        issuer: Issuer,
        name: str,
        *,
        card_id: str | None = None,
        return_url: str | None = None,
    ) -> AuthorizationStart: ...

    async def switch_to_api(
        self, account_id: str, *, return_url: str | None = None
    ) -> AuthorizationStart: ...

    async def reauthorize(
        self, account_id: str, *, return_url: str | None = None
    ) -> AuthorizationStart: ...

    async def sync_now(self, account_id: str) -> SyncInfo: ...

    async def abandon_registration(self, account_id: str) -> None:
        """R11: remove a new account whose registration was given up before consent."""
        ...

    async def delete_account(self, account_id: str) -> None: ...

    async def archive_account(self, account_id: str) -> AccountInfo: ...

    async def check_link(self, account_id: str) -> LinkCheck:
        """R16: still active, stopped (now recorded as revoked) or none, asked of the issuer."""
        ...

    async def registered_cards(self, account_id: str) -> list[CardInfo]: ...

    async def events(self, account_id: str, *, limit: int = 50) -> list[EventInfo]: ...

    async def upload_statements(
        self, account_id: str, filename: str, data: bytes, *, card_id: str | None = None
    ) -> UploadInfo: ...

    async def resync_old_card(
        self, account_id: str, login_id: str, password: str
    ) -> UploadInfo: ...

    async def new_account_for_old_card(
        self, account_id: str, login_id: str, password: str, name: str
    ) -> AccountInfo: ...

    async def issuer_sites(self) -> dict[Issuer, IssuerSites]: ...

    async def issuer_health(self) -> dict[str, IssuerHealthInfo]: ...

    async def export_link(self, account_id: str) -> str: ...
