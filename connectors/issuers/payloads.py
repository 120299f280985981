"""Reading the issuer's JSON (``docs/issuer-api.md``) into the port's values.

Every reader raises ``PayloadError`` with a short reason on a missing or
mistyped field; the connector turns it into ``BadPayload``. Amounts must be
JSON integers and foreign amounts decimal text: money never passes through float.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast

from backend.service.ports import (
    GrantInfo,
    IssuerCard,
    IssuerStatement,
    LegacyStatements,
    StatementPage,
    TokenSet,
)


class PayloadError(ValueError):
    """A field of an issuer answer is missing or has the wrong type."""


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{what} is not an object")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise PayloadError(f"{key} is not a list")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise PayloadError(f"{key} is missing or not text")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise PayloadError(f"{key} is not text")
    return value


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{key} is missing or not an integer")
    return value


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise PayloadError(f"{key} is missing or not a boolean")
    return value


def _date(data: Mapping[str, Any], key: str) -> dt.date:
    text = _str(data, key)
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise PayloadError(f"{key} is not a YYYY-MM-DD date") from exc


def _opt_date(data: Mapping[str, Any], key: str) -> dt.date | None:
    return None if data.get(key) is None else _date(data, key)


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = data.get(key, default)
    if value is None:
        value = default
    if value not in allowed:
        raise PayloadError(f"{key} is not one of {', '.join(allowed)}")
    return cast(str, value)


def card(value: Any) -> IssuerCard:
    """One ``Card`` object."""
    data = _obj(value, "card")
    return IssuerCard(
        card_ref=_str(data, "card_id"),
        product=_str(data, "product"),
        masked_number=_str(data, "masked_number"),
        holder_name=_str(data, "holder_name"),
        role=cast(
            Literal["basic", "supplementary"],
            _choice(data, "role", ("basic", "supplementary"), "basic"),
        ),
        basic_card_ref=_opt_str(data, "basic_card_id"),
        status=cast(
            Literal["active", "replaced"], _choice(data, "status", ("active", "replaced"), "active")
        ),
        replaced_by=_opt_str(data, "replaced_by"),
    )


def statement(value: Any, *, with_id: bool = True) -> IssuerStatement:
    """One ``Txn`` object; legacy lines (``with_id=False``) carry no transaction id."""
    data = _obj(value, "statement")
    foreign_amount = _opt_str(data, "foreign_amount")
    if foreign_amount is not None:
        try:
            Decimal(foreign_amount)
        except InvalidOperation as exc:
            raise PayloadError("foreign_amount is not a decimal") from exc
    return IssuerStatement(
        transaction_id=_str(data, "transaction_id") if with_id else None,
        card_ref=_str(data, "card_id"),
        use_date=_date(data, "use_date"),
        posted_date=_opt_date(data, "posted_date"),
        merchant=_str(data, "merchant"),
        amount_jpy=_int(data, "amount_jpy"),
        foreign_amount=foreign_amount,
        foreign_currency=_opt_str(data, "foreign_currency"),
        status=cast(
            Literal["pending", "confirmed"],
            _choice(data, "status", ("pending", "confirmed"), "confirmed"),
        ),
        holder_name=_opt_str(data, "holder_name"),
    )


def grant_info(value: Any) -> GrantInfo:
    """The answer of ``GET /api/v1/me``."""
    data = _obj(value, "grant")
    return GrantInfo(
        subject=_str(data, "subject"),
        subject_kind=cast(
            Literal["single", "combined"],
            _choice(data, "subject_kind", ("single", "combined"), "single"),
        ),
        cards=tuple(card(item) for item in _list(data, "cards")),
        grant_id=_opt_str(data, "grant_id"),
    )


def statement_page(value: Any) -> StatementPage:
    """The answer of ``GET /api/v1/transactions/sync``."""
    data = _obj(value, "page")
    removed: list[str] = []
    for item in _list(data, "removed"):
        # The contract sends objects; a bare id is accepted as the same thing.
        removed.append(
            item if isinstance(item, str) else _str(_obj(item, "removed"), "transaction_id")
        )
    return StatementPage(
        added=tuple(statement(item) for item in _list(data, "added")),
        modified=tuple(statement(item) for item in _list(data, "modified")),
        removed=tuple(removed),
        next_cursor=_str(data, "next_cursor"),
        has_more=_bool(data, "has_more"),
    )


def link_status(value: Any) -> Literal["active", "stopped"]:
    """The ``status`` of ``GET /api/v1/link``."""
    return cast(
        Literal["active", "stopped"],
        _choice(_obj(value, "link"), "status", ("active", "stopped"), ""),
    )


def legacy_session(value: Any) -> str:
    """The session id of ``POST /legacy/login``."""
    return _str(_obj(value, "login"), "session")


def legacy_statements(value: Any) -> LegacyStatements:
    """The answer of ``GET /legacy/statements``."""
    data = _obj(value, "legacy statements")
    return LegacyStatements(
        cards=[card(item) for item in _list(data, "cards")],
        statements=[statement(item, with_id=False) for item in _list(data, "statements")],
    )


def token_set(token: Mapping[str, Any], *, now: float | None = None) -> TokenSet:
    """A token answer (or authlib's ``OAuth2Token``) as the port's ``TokenSet``."""
    access_token = _str(token, "access_token")
    refresh_token = _opt_str(token, "refresh_token")
    expires_at = token.get("expires_at")
    if expires_at is None and token.get("expires_in") is not None:
        expires_in = token["expires_in"]
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            raise PayloadError("expires_in is not a number")
        expires_at = int((now if now is not None else time.time()) + expires_in)
    if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, int)):
        raise PayloadError("expires_at is not an integer")
    consent_expires_at = token.get("consent_expires_at")
    if consent_expires_at is not None and (
        isinstance(consent_expires_at, bool) or not isinstance(consent_expires_at, int)
    ):
        raise PayloadError("consent_expires_at is not an integer")
    scope = token.get("scope") or ""
    if isinstance(scope, list | tuple):
        scope = " ".join(str(part) for part in scope)
    if not isinstance(scope, str):
        raise PayloadError("scope is not text")
    return TokenSet(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_at=expires_at,
        scope=scope,
        consent_expires_at=consent_expires_at,
    )


def authlib_token(tokens: TokenSet) -> dict[str, Any]:
    """The port's ``TokenSet`` as the dict authlib keeps (``expires_at`` drives refresh)."""
    token: dict[str, Any] = {"access_token": tokens.access_token, "token_type": "Bearer"}
    if tokens.refresh_token is not None:
        token["refresh_token"] = tokens.refresh_token
    if tokens.expires_at is not None:
        token["expires_at"] = tokens.expires_at
    if tokens.scope:
        token["scope"] = tokens.scope
    if tokens.consent_expires_at is not None:
        token["consent_expires_at"] = tokens.consent_expires_at
    return token
