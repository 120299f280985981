"""The words the back end and everything that talks to it share, defined once.

Statuses, event types and refusal codes travel between the API's schemas, the typed
client, the flows and their port, and the notifier. Each is a ``StrEnum`` here, so a
misspelt one is a type error (``AccountStatus.NEEDS_REAUHT`` does not exist) instead of
a comparison that is silently never true. The values are the API contract's strings.

Standard library only: the domain, the API schemas, ``connectors.backend_client``,
``statemachine`` and ``bot`` may all import it.
"""

from __future__ import annotations

from enum import StrEnum


class Issuer(StrEnum):
    AMEX = "amex"
    JCB = "jcb"


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    READ_ONLY = "read_only"


class SyncMethod(StrEnum):
    LEGACY = "legacy"
    API = "api"
    UPLOAD = "upload"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"  # also: a new API account waiting for the first consent
    SYNCING = "syncing"
    DISABLED = "disabled"
    DELETED = "deleted"


class CardRole(StrEnum):
    BASIC = "basic"
    SUPPLEMENTARY = "supplementary"


class LinkStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


class LinkCheck(StrEnum):
    """R16: what the issuer says of an account's link when asked."""

    ACTIVE = "active"  # still registered at the issuer
    STOPPED = "stopped"  # stopped there, now recorded as revoked
    NONE = "none"  # the account has no link to ask about


class SyncStatus(StrEnum):
    """How a sync asked for now ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    ALREADY_RUNNING = "already_running"


class EventType(StrEnum):
    """What the back end records in its outbox, and delivers to its subscribers."""

    SYNC_COMPLETED = "sync.completed"
    SYNC_FAILED = "sync.failed"
    LINK_CREATED = "link.created"
    LINK_NEEDS_REAUTH = "link.needs_reauth"
    LINK_REVOKED = "link.revoked"
    CONSENT_EXPIRING = "link.consent_expiring"  # 14, 7 and 1 days before a consent ends
    LINK_REPAIRED = "link.repaired"  # renewed or re-authenticated: warnings cleared
    API_RELEASED = "office.api_released"
    ACCOUNT_CREATED = "account.created"
    ACCOUNT_DELETED = "account.deleted"
    CARD_CHANGED = "card.changed"
    CARD_DISCOVERED = "card.discovered"
    AUTHORIZATION_FAILED = "authorization.failed"
    STATEMENTS_UPLOADED = "statements.uploaded"


class RefusalCode(StrEnum):
    """The stable codes of the back end's refusals (``error.code`` of every error answer,
    ``error_code`` of a failed consent or sync). The back end may answer a code newer
    than a client: a client keeps ``str`` where it receives one and compares with these."""

    # the domain's errors (backend/domain/errors.py)
    DOMAIN_ERROR = "domain_error"
    NOT_FOUND = "not_found"
    UNAUTHENTICATED = "unauthenticated"
    CONFLICT = "conflict"
    STATEMENT_FILE_INVALID = "statement_file_invalid"
    FORBIDDEN = "forbidden"
    INVALID_REQUEST = "invalid_request"
    LAST_ADMIN = "last_admin"
    ALREADY_MEMBER = "already_member"
    RULE_VIOLATION = "rule_violation"
    CARD_NOT_ELIGIBLE = "card_not_eligible"  # R1
    API_NOT_RELEASED = "api_not_released"  # R3/R4
    CARD_ALREADY_LINKED = "card_already_linked"  # R5/R14
    COMBINED_LOGIN_NOT_SUPPORTED = "combined_login_not_supported"  # R6
    WRONG_MYJCB_ID = "wrong_myjcb_id"  # R6
    MYJCB_ID_ALREADY_LINKED = "myjcb_id_already_linked"  # R6
    REVOKE_AT_ISSUER_FIRST = "revoke_at_issuer_first"  # R10/R16
    ONE_CARD_PER_AUTHORIZATION = "one_card_per_authorization"  # R13
    SUPPLEMENTARY_NOT_REGISTERED = "supplementary_not_registered"  # R15
    CARD_MISMATCH = "card_mismatch"  # R15
    ACCOUNT_EXISTS_FOR_CARD = "account_exists_for_card"  # R12
    INVALID_STATE = "invalid_state"
    # a consent refused by its callback before anything was exchanged
    NOT_STARTED_HERE = "not_started_here"
    ISSUER_MISMATCH = "issuer_mismatch"
    # the issuers' answers (backend/service/ports.py)
    ISSUER_ERROR = "issuer_error"
    CONSENT_REVOKED = "consent_revoked"
    REAUTH_REQUIRED = "reauth_required"
    CONSENT_REFUSED = "consent_refused"
    LEGACY_LOGIN_FAILED = "legacy_login_failed"
    RATE_LIMITED = "rate_limited"
    ISSUER_UNAVAILABLE = "issuer_unavailable"
    BAD_PAYLOAD = "bad_payload"
    INVALID_CURSOR = "invalid_cursor"
    INTERNAL_ERROR = "internal_error"
    # the API's own
    VALIDATION_ERROR = "validation_error"
    TOO_MANY_REQUESTS = "too_many_requests"
    SECRET_UNREADABLE = "secret_unreadable"
    # the typed client's, for an answer it cannot read
    UNEXPECTED_ANSWER = "unexpected_answer"
