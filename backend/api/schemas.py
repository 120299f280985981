"""Request and response models of the REST API: the back end's contract.

The typed client (``connectors/backend_client.py``) imports these models, so they
hold only plain, JSON-friendly fields. Nothing here carries an encrypted field, an
OAuth token, a code verifier or a stored password: the ``from_*`` constructors
copy the fields that may leave the back end and nothing else.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field

from backend.domain import identity
from backend.domain.model import (
    Account,
    ApiLink,
    AuthorizationPurpose,
    Card,
    Event,
    Invitation,
    Membership,
    Office,
    Rollout,
    Statement,
    StatementSource,
    StatementStatus,
)
from backend.domain.rules import API_ELIGIBLE_PRODUCTS

# The shared words, named from here by the typed client (its contract is these schemas).
from backend.domain.vocabulary import AccountStatus as AccountStatus
from backend.domain.vocabulary import CardRole as CardRole
from backend.domain.vocabulary import EventType as EventType
from backend.domain.vocabulary import Issuer as Issuer
from backend.domain.vocabulary import LinkCheck as LinkCheck
from backend.domain.vocabulary import LinkStatus as LinkStatus
from backend.domain.vocabulary import RefusalCode as RefusalCode
from backend.domain.vocabulary import Role as Role
from backend.domain.vocabulary import SyncMethod as SyncMethod
from backend.domain.vocabulary import SyncStatus as SyncStatus

# Requests carry passwords only on their way to the issuer (legacy login, R7);
# ``repr=False`` keeps them out of log lines and error reports.
_PASSWORD = Field(min_length=1, repr=False, json_schema_extra={"format": "password"})


def _name(value: str) -> str:
    return identity.normalize_name(value)


def _email(value: str) -> str:
    return identity.normalize_email(value)


DisplayName = Annotated[str, AfterValidator(_name)]
"""A name people see: NFC; no control, bidirectional or invisible characters (422)."""

Email = Annotated[
    str,
    AfterValidator(_email),
    Field(
        min_length=3,
        max_length=identity.MAX_EMAIL,
        description="An email address, internationalised ones included (RFC 6531); "
        "compared in NFC and lower case.",
        json_schema_extra={"format": "idn-email"},
    ),
]


RETURN_URL_DESCRIPTION = (
    "A path on this service (a relative reference starting with `/`, e.g. "
    "`/chat?conversation=…`) that the callback page links back to. No scheme, host, "
    "backslash, space or control character: anything else answers 400 `invalid_request`."
)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------- errors
class ErrorBody(BaseModel):
    code: str = Field(
        description="Stable machine-readable code, e.g. `card_already_linked` (the back "
        "end's are `backend.domain.vocabulary.RefusalCode`; a client meets newer ones as "
        "plain strings)."
    )
    rule: str | None = Field(
        default=None, description="The rule of the domain that refused, e.g. `R5`."
    )
    message: str = Field(description="Developer-facing explanation (English).")
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = Field(
        default=None,
        description="The request's id, also in the `X-Request-Id` header; quote it when "
        "reporting an error.",
    )


class ErrorResponse(BaseModel):
    """Every error answer of the API has this shape."""

    error: ErrorBody


# --------------------------------------------------------------------------- offices
class OfficeOut(_Out):
    id: str
    name: str
    role: Role = Field(description="The caller's role in this office.")
    created_at: dt.datetime
    admins: list[str] = Field(
        default_factory=list,
        description="Emails of the office's admins: tells apart two offices of one name.",
    )

    @classmethod
    def from_domain(
        cls, office: Office, role: Role, admins: tuple[str, ...] | list[str] = ()
    ) -> OfficeOut:
        return cls(
            id=office.id,
            name=office.name,
            role=role,
            created_at=office.created_at,
            admins=list(admins),
        )


class OfficeDetailOut(OfficeOut):
    released_issuers: list[Issuer] = Field(
        description="Issuers whose API linking is released for this office (R3/R4)."
    )


class OfficeCreate(_In):
    name: DisplayName = Field(min_length=1, max_length=200)


class MemberOut(_Out):
    office_id: str
    email: str
    role: Role

    @classmethod
    def from_domain(cls, member: Membership) -> MemberOut:
        return cls(office_id=member.office_id, email=member.email, role=member.role)


class MemberPut(_In):
    role: Role


class InvitationCreate(_In):
    email: str = Field(min_length=3, max_length=320)
    role: Role


class InvitationOut(_Out):
    """A pending invitation: nothing is granted until the invitee accepts it."""

    id: str
    office_id: str
    office_name: str
    office_admins: list[str] = Field(
        description="The office's admins, so the invitee can tell which office this is."
    )
    email: str = Field(description="Who is invited: only they can accept or decline.")
    role: Role
    invited_by: str
    created_at: dt.datetime

    @classmethod
    def from_domain(
        cls, invitation: Invitation, office: Office, admins: tuple[str, ...]
    ) -> InvitationOut:
        return cls(
            id=invitation.id,
            office_id=invitation.office_id,
            office_name=office.name,
            office_admins=list(admins),
            email=invitation.email,
            role=invitation.role,
            invited_by=invitation.invited_by,
            created_at=invitation.created_at,
        )


class TokenOut(_Out):
    """One of the caller's API tokens: never the token itself."""

    id: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class DiscoveredCardOut(_Out):
    """A card that appeared under a linked ID, and what is offered for it (R15)."""

    card_id: str
    masked_number: str | None = None
    holder_name: str | None = None
    role: CardRole | None = None
    offer: Literal["supplementary_card", "register"] = Field(
        description="The flow that sets it up: `supplementary_card` for an Amex "
        "supplementary card (an account of its own), `register` otherwise."
    )
    basic_account_id: str | None = Field(
        default=None, description="The office's account of its basic card, when there is one."
    )
    api_eligible: bool = True


class NoticeOut(_Out):
    """R4: the orange notice of the home screen."""

    issuer: Issuer
    account_ids: list[str] = Field(
        description="`api_released`: accounts that can be switched to API now. "
        "`consent_expiring`: the account whose consent ends soon. "
        "`card_discovered`: the account whose ID reported the card. "
        "`needs_reauth`: the API account whose link needs re-authentication."
    )
    kind: Literal["api_released", "consent_expiring", "card_discovered", "needs_reauth"] = (
        "api_released"
    )
    expires_at: dt.datetime | None = Field(
        default=None, description="`consent_expiring`: when the consent ends."
    )
    card: DiscoveredCardOut | None = Field(
        default=None, description="`card_discovered`: the card and what is offered for it."
    )
    stop_at_member_site: bool = Field(
        default=False,
        description="`needs_reauth`: the old link still holds the card at Amex, so it must "
        "first be stopped on the member site (登録情報の変更 → 外部サービスとの連携 → the "
        "service → 停止する); until then the card cannot be chosen when re-authenticating.",
    )
    member_site_url: str | None = Field(
        default=None,
        description="With `stop_at_member_site`: the member-site page where the link is "
        "stopped (absolute URL).",
    )


class RolloutCreate(_In):
    issuer: Issuer


class RolloutOut(_Out):
    office_id: str
    issuer: Issuer
    released_at: dt.datetime

    @classmethod
    def from_domain(cls, rollout: Rollout) -> RolloutOut:
        return cls(
            office_id=rollout.office_id, issuer=rollout.issuer, released_at=rollout.released_at
        )


# --------------------------------------------------------------------------- accounts
class CardOut(_Out):
    id: str
    issuer: Issuer
    card_ref: str = Field(description="The issuer's own id of the card.")
    masked_number: str
    product: str
    holder_name: str
    role: CardRole
    basic_card_id: str | None = Field(None, description="For a supplementary card (R15).")
    successor_id: str | None = Field(None, description="The card that replaced it (R7).")
    api_eligible: bool = Field(description="Whether the issuer offers API linking for it (R1).")
    declared: bool = Field(
        False,
        description=(
            "True for a card the office described itself for an upload account: its own "
            "record, not confirmed by the issuer; the issuer's card replaces it when the "
            "account is linked by API."
        ),
    )

    @classmethod
    def from_domain(cls, card: Card) -> CardOut:
        return cls(
            id=card.id,
            issuer=card.issuer,
            card_ref=card.card_ref,
            masked_number=card.masked_number,
            product=card.product,
            holder_name=card.holder_name,
            role=card.role,
            basic_card_id=card.basic_card_id,
            successor_id=card.successor_id,
            api_eligible=card.product in API_ELIGIBLE_PRODUCTS[Issuer(card.issuer)],
            declared=card.declared,
        )


class LinkOut(_Out):
    status: LinkStatus
    subject: str = Field(description="Amex online-service ID or MyJCB ID that consented.")
    expires_at: dt.datetime | None
    consent_expires_at: dt.datetime | None = Field(
        default=None,
        description="When the issuer's consent ends and the person must consent again "
        "(warned 14, 7 and 1 days ahead); null when the issuer names no end.",
    )
    consent_expiring: bool = Field(
        default=False,
        description="A warning of the consent's end was sent and the consent is not renewed "
        "yet: re-authenticating (`POST /accounts/{id}/reauth`) renews it in place.",
    )

    @classmethod
    def from_domain(cls, link: ApiLink) -> LinkOut:
        # Deliberately not the tokens: they never leave the back end.
        return cls(
            status=link.status,
            subject=link.subject,
            expires_at=link.expires_at,
            consent_expires_at=link.consent_expires_at,
            consent_expiring=link.consent_warned_days is not None,
        )


class AccountOut(_Out):
    id: str
    office_id: str
    name: str
    issuer: Issuer
    sync_method: SyncMethod
    status: AccountStatus
    card: CardOut | None
    last_synced_at: dt.datetime | None
    last_error: str | None
    link: LinkOut | None
    has_legacy_credentials: bool = Field(
        description="True while an ID and password are stored (none after a switch, R2)."
    )
    created_at: dt.datetime

    @classmethod
    def from_domain(
        cls, account: Account, card: Card | None = None, link: ApiLink | None = None
    ) -> AccountOut:
        return cls(
            id=account.id,
            office_id=account.office_id,
            name=account.name,
            issuer=account.issuer,
            sync_method=account.sync_method,
            status=account.status,
            card=CardOut.from_domain(card) if card else None,
            last_synced_at=account.last_synced_at,
            last_error=account.last_error,
            link=LinkOut.from_domain(link) if link else None,
            has_legacy_credentials=account.has_legacy_credentials,
            created_at=account.created_at,
        )


class LegacyAccountCreate(_In):
    """The old ID/password method; the login is checked at the issuer first."""

    sync_method: Literal["legacy"]
    issuer: Issuer
    name: DisplayName = Field(default="", max_length=200)
    login_id: str = Field(min_length=1, repr=False)
    password: str = _PASSWORD
    card_ref: str | None = Field(
        default=None, description="Required when the login shows several cards (R15)."
    )


class ApiAccountCreate(_In):
    """R11: a new API account; the answer carries the issuer's authorization URL."""

    sync_method: Literal["api"]
    issuer: Issuer
    name: DisplayName = Field(default="", max_length=200)
    card_id: str | None = Field(default=None, description="A card already known, if any.")
    return_url: str | None = Field(
        default=None,
        max_length=500,
        description=RETURN_URL_DESCRIPTION,
        json_schema_extra={"format": "uri-reference"},
    )


class AuthorizationOptions(_In):
    """Optional body of switch-to-api and reauth."""

    return_url: str | None = Field(
        default=None,
        max_length=500,
        description=RETURN_URL_DESCRIPTION,
        json_schema_extra={"format": "uri-reference"},
    )


class LinkCheckOut(_Out):
    status: LinkCheck = Field(
        description="At the issuer now: still registered, stopped (R16), or no link at all."
    )


class ExportLinkOut(_Out):
    url: str = Field(description="A path; valid for ten minutes, for the member who asked.")


class RegisteredCardsOut(_Out):
    """R15: the cards registered to the account's issuer ID, as the issuer shows them."""

    subject_cards: list[CardOut]


class IssuerInfoOut(_Out):
    """Where a person does what only the issuer's own site can do (R15, R16, R6, R7)."""

    issuer: Issuer
    member_site_url: str
    card_registration_url: str | None = Field(
        None, description="Amex: register a supplementary card to the online-service ID (R15)."
    )
    external_services_url: str | None = Field(
        None, description="Amex: 登録情報の変更 → 外部サービスとの連携, to stop a link (R16)."
    )


class IssuerHealthOut(_Out):
    """How an issuer answers renkei's syncs, judged from their recent outcomes.

    ``down``: the newest 3 counted syncs all failed at the issuer (5xx, timeout,
    connection error, unreadable answer); ``healthy``: fewer than 3 counted syncs, at
    least 80 % of the last 20 (within 2 hours) succeeded, or the newest 3 did;
    ``degraded``: anything else. An account's own failure (a stopped link, a refused
    grant or password) never counts against the issuer.
    """

    issuer: Issuer
    state: Literal["healthy", "degraded", "down"]
    success_rate: float | None = Field(
        None, description="Successes over counted syncs in the window; null when none."
    )
    samples: int = Field(description="Counted syncs in the window (at most 20).")
    failure_streak: int = Field(description="Issuer failures in a row, newest first.")
    failing_since: dt.datetime | None = None
    last_outcome_at: dt.datetime | None = None
    next_probe_at: dt.datetime | None = Field(
        None,
        description=(
            "While down, when the next scheduled sync asks the issuer again; the others "
            "wait until it answers."
        ),
    )


class UploadCard(_In):
    card_ref: str = Field(min_length=1)
    product: str = Field(min_length=1)
    masked_number: str = Field(min_length=4)
    holder_name: DisplayName = Field(min_length=1, max_length=200)
    role: CardRole = CardRole.BASIC


class UploadAccountCreate(_In):
    """An account fed only by statement files."""

    sync_method: Literal["upload"]
    issuer: Issuer
    name: DisplayName = Field(default="", max_length=200)
    card: UploadCard


AccountCreate = Annotated[
    LegacyAccountCreate | ApiAccountCreate | UploadAccountCreate,
    Field(discriminator="sync_method"),
]


class AuthorizationStartOut(_Out):
    """Where to send the person's browser to consent at the issuer (R11, R12).

    ``authorization_url`` is renkei's start page: it goes on to the issuer only in a browser
    that proves it is the caller's, by the caller's API token
    (``POST /oauth/start/{id}/signed-in``) or by typing ``sign_in_code``. Show the code to
    the caller only (their own conversation), never next to a link that may be forwarded.
    """

    account_id: str
    authorization_url: str
    sign_in_code: str = Field(description="One-time code, single use, for the caller only.")
    sign_in_code_expires_at: dt.datetime


class ConsentStartOut(_Out):
    """The issuer's authorization URL, for the browser that just proved it is the member's."""

    issuer_url: str


class AccountDeletedOut(_Out):
    id: str
    status: AccountStatus
    deleted_at: dt.datetime | None

    @classmethod
    def from_domain(cls, account: Account) -> AccountDeletedOut:
        return cls(id=account.id, status=account.status, deleted_at=account.deleted_at)


class SyncResultOut(_Out):
    account_id: str
    status: SyncStatus = Field(
        description="`already_running`: a sync of the account is under way already; "
        "this request did not ask the issuer again."
    )
    added: int = 0
    modified: int = 0
    removed: int = 0
    error_code: str | None = None
    job_id: int | None = Field(
        default=None,
        description="The background sync that was queued for the account and that this "
        "request carried out instead (it is not run again), if any.",
    )


class CardUseOut(_Out):
    """One account syncing the card; office fields are null where the caller may not see it."""

    account_id: str | None
    office_id: str | None
    office_name: str | None
    sync_method: SyncMethod
    api_linked: bool


class CardUsesOut(_Out):
    """R14: every office syncing this card, and which one holds its API link."""

    card: CardOut
    uses: list[CardUseOut]


# --------------------------------------------------------------------------- statements
class StatementOut(_Out):
    id: str
    account_id: str
    card_id: str
    use_date: dt.date
    posted_date: dt.date | None
    merchant: str
    amount_jpy: int
    foreign_amount: str | None
    foreign_currency: str | None
    holder_name: str | None
    status: StatementStatus
    source: StatementSource
    issuer_txn_id: str | None

    @computed_field(  # type: ignore[prop-decorator]
        description="`purchase`, or `adjustment` for a refund or correction (a minus "
        "amount). Payments of an earlier bill are never statements."
    )
    @property
    def kind(self) -> str:
        return "adjustment" if self.amount_jpy < 0 else "purchase"

    @classmethod
    def from_domain(cls, statement: Statement) -> StatementOut:
        return cls.model_validate(statement, from_attributes=True)


class StatementPageOut(_Out):
    items: list[StatementOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at end. Opaque: URL-safe "
        "base64 without padding, valid for this account's listing only."
    )


class SkippedGroupOut(_Out):
    card: str = Field(description="The file's card key (会員番号 or ご利用者).")
    rows: int
    line: int | None = Field(default=None, description="The file line of its first row.")


class UploadResultOut(_Out):
    added: int
    duplicates: int = Field(
        description="Rows already in the account (by upload, legacy sync or API), not "
        "stored again: what a file overlapping an earlier period brings twice."
    )
    skipped_groups: list[SkippedGroupOut] = Field(
        default_factory=list,
        description="Rows of other cards, left out (R15: one account per card).",
    )
    payments: int = Field(
        default=0,
        description="Rows paying an earlier bill (口座振替 / お支払い): no card's use, not stored.",
    )
    adjustments: int = Field(
        default=0,
        description="Refunds and corrections among the file's rows, stored on their card "
        "with their minus sign.",
    )
    first_use_date: dt.date | None = Field(default=None, description="The file's first day.")
    last_use_date: dt.date | None = Field(default=None, description="The file's last day.")


class OldCardCredentials(_In):
    """R7 (b): the old card's own issuer-website login, used once and not stored."""

    login_id: str = Field(min_length=1, repr=False)
    password: str = _PASSWORD


class OldCardAccountCreate(OldCardCredentials):
    """R7 (c): a new account for the old card with its credentials."""

    name: DisplayName = Field(default="", max_length=200)


# --------------------------------------------------------------------------- events
class EventOut(_Out):
    id: str
    type: EventType
    office_id: str | None
    account_id: str | None
    created_at: dt.datetime
    payload: dict[str, Any]

    @classmethod
    def from_domain(cls, event: Event) -> EventOut:
        return cls(
            id=event.id,
            type=event.type,
            office_id=event.office_id,
            account_id=event.account_id,
            created_at=event.created_at,
            payload=dict(event.payload),
        )


# --------------------------------------------------------------------------- OAuth, webhooks
class AuthorizationOutcomeOut(_Out):
    """The end of an authorization at the issuer; ``error_code`` is null when linked."""

    linked: bool
    account_id: str | None
    office_id: str | None
    purpose: AuthorizationPurpose | None
    error_code: str | None = None
    rule: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class IssuerWebhookIn(BaseModel):
    event_id: str = Field(min_length=1)
    issuer: Issuer | None = None
    type: str = Field(min_length=1, description="statements.available, link.revoked, ...")
    data: dict[str, Any] = Field(default_factory=dict)


class IssuerWebhookAck(BaseModel):
    status: Literal["processed", "duplicate"]
