"""Errors of the domain: every rule refusal has a stable code and cites its rule.

Tree::

    DomainError
    ├── NotFound                      (not_found)
    ├── Unauthenticated               (unauthenticated)
    ├── Conflict                      (conflict)
    ├── StatementFileInvalid          (statement_file_invalid; details: code, line, column)
    ├── Forbidden                     (forbidden)
    ├── InvalidRequest                (invalid_request)
    ├── LastAdmin                     (last_admin)
    ├── AlreadyMember                 (already_member)
    └── RuleViolation                 a rule of domain.md refuses the operation
        ├── CardNotEligible           R1   card_not_eligible
        ├── ApiNotReleased            R3/R4 api_not_released
        ├── CardAlreadyLinked         R5/R14 card_already_linked
        ├── CombinedLoginRefused      R6   combined_login_not_supported
        ├── WrongMyJcbId              R6   wrong_myjcb_id
        ├── MyJcbIdAlreadyLinked      R6   myjcb_id_already_linked
        ├── RevokeAtIssuerFirst       R10/R16 revoke_at_issuer_first
        ├── OneCardPerAuthorization   R13  one_card_per_authorization
        ├── SupplementaryNotRegistered R15 supplementary_not_registered
        ├── CardMismatch              R15  card_mismatch
        ├── AccountExistsForCard      R12  account_exists_for_card
        └── InvalidState              state machine of an account or link (invalid_state)
"""

from __future__ import annotations

from typing import Any

from backend.domain.vocabulary import RefusalCode


class DomainError(Exception):
    """Base of the domain's errors. ``code`` is stable and part of the API contract."""

    code: RefusalCode = RefusalCode.DOMAIN_ERROR
    rule: str | None = None

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.code)
        self.details: dict[str, Any] = details


class NotFound(DomainError):
    code = RefusalCode.NOT_FOUND


class Unauthenticated(DomainError):
    code = RefusalCode.UNAUTHENTICATED


class Conflict(DomainError):
    """Someone else changed the thing meanwhile (optimistic locking): read it again."""

    code = RefusalCode.CONFLICT


class StatementFileInvalid(DomainError):
    """An uploaded statement file cannot be read; ``details`` name the line and column."""

    code = RefusalCode.STATEMENT_FILE_INVALID


class Forbidden(DomainError):
    code = RefusalCode.FORBIDDEN


class InvalidRequest(DomainError):
    code = RefusalCode.INVALID_REQUEST


class LastAdmin(DomainError):
    """An office keeps at least one admin: nobody else could ever manage it again."""

    code = RefusalCode.LAST_ADMIN


class AlreadyMember(DomainError):
    code = RefusalCode.ALREADY_MEMBER


class RuleViolation(DomainError):
    code = RefusalCode.RULE_VIOLATION


class CardNotEligible(RuleViolation):
    code = RefusalCode.CARD_NOT_ELIGIBLE
    rule = "R1"


class ApiNotReleased(RuleViolation):
    code = RefusalCode.API_NOT_RELEASED
    rule = "R3"


class CardAlreadyLinked(RuleViolation):
    code = RefusalCode.CARD_ALREADY_LINKED
    rule = "R5"


class CombinedLoginRefused(RuleViolation):
    code = RefusalCode.COMBINED_LOGIN_NOT_SUPPORTED
    rule = "R6"


class WrongMyJcbId(RuleViolation):
    code = RefusalCode.WRONG_MYJCB_ID
    rule = "R6"


class MyJcbIdAlreadyLinked(RuleViolation):
    code = RefusalCode.MYJCB_ID_ALREADY_LINKED
    rule = "R6"


class RevokeAtIssuerFirst(RuleViolation):
    code = RefusalCode.REVOKE_AT_ISSUER_FIRST
    rule = "R10"


class OneCardPerAuthorization(RuleViolation):
    code = RefusalCode.ONE_CARD_PER_AUTHORIZATION
    rule = "R13"


class SupplementaryNotRegistered(RuleViolation):
    code = RefusalCode.SUPPLEMENTARY_NOT_REGISTERED
    rule = "R15"


class AccountExistsForCard(RuleViolation):
    """A new account for a card this office already syncs would be a duplicate: switch it."""

    code = RefusalCode.ACCOUNT_EXISTS_FOR_CARD
    rule = "R12"


class CardMismatch(RuleViolation):
    code = RefusalCode.CARD_MISMATCH
    rule = "R15"


class InvalidState(RuleViolation):
    code = RefusalCode.INVALID_STATE
