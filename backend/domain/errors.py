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


class DomainError(Exception):
    """Base of the domain's errors. ``code`` is stable and part of the API contract."""

    code = "domain_error"
    rule: str | None = None

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.code)
        self.details: dict[str, Any] = details


class NotFound(DomainError):
    code = "not_found"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Conflict(DomainError):
    """Someone else changed the thing meanwhile (optimistic locking): read it again."""

    code = "conflict"


class StatementFileInvalid(DomainError):
    """An uploaded statement file cannot be read; ``details`` name the line and column."""

    code = "statement_file_invalid"


class Forbidden(DomainError):
    code = "forbidden"


class InvalidRequest(DomainError):
    code = "invalid_request"


class LastAdmin(DomainError):
    """An office keeps at least one admin: nobody else could ever manage it again."""

    code = "last_admin"


class AlreadyMember(DomainError):
    code = "already_member"


class RuleViolation(DomainError):
    code = "rule_violation"


class CardNotEligible(RuleViolation):
    code = "card_not_eligible"
    rule = "R1"


class ApiNotReleased(RuleViolation):
    code = "api_not_released"
    rule = "R3"


class CardAlreadyLinked(RuleViolation):
    code = "card_already_linked"
    rule = "R5"


class CombinedLoginRefused(RuleViolation):
    code = "combined_login_not_supported"
    rule = "R6"


class WrongMyJcbId(RuleViolation):
    code = "wrong_myjcb_id"
    rule = "R6"


class MyJcbIdAlreadyLinked(RuleViolation):
    code = "myjcb_id_already_linked"
    rule = "R6"


class RevokeAtIssuerFirst(RuleViolation):
    code = "revoke_at_issuer_first"
    rule = "R10"


class OneCardPerAuthorization(RuleViolation):
    code = "one_card_per_authorization"
    rule = "R13"


class SupplementaryNotRegistered(RuleViolation):
    code = "supplementary_not_registered"
    rule = "R15"


class AccountExistsForCard(RuleViolation):
    """A new account for a card this office already syncs would be a duplicate: switch it."""

    code = "account_exists_for_card"
    rule = "R12"


class CardMismatch(RuleViolation):
    code = "card_mismatch"
    rule = "R15"


class InvalidState(RuleViolation):
    code = "invalid_state"
