"""Errors as HTTP answers: one envelope, ``{"error": {code, rule, message, details}}``.

Status by error (the ``code`` is the contract; the status is its HTTP family)::

    DomainError
    ├── NotFound                404
    ├── Unauthenticated         401  WWW-Authenticate: Bearer
    ├── Forbidden               403
    ├── InvalidRequest          400
    ├── LastAdmin               409
    ├── AlreadyMember           409
    ├── StatementFileInvalid    422
    └── RuleViolation           409  (every rule refusal, InvalidState too)
    IssuerError                 502
    ├── RateLimited             503  Retry-After
    ├── ReauthRequired          409
    ├── ConsentRevoked          409
    ├── ConsentRefused          409
    └── LegacyLoginFailed       400  (the ID or password the person typed was refused)
    RetryLater (manual sync)    503  Retry-After
    database connection lost    503  Retry-After, code ``database_unavailable``
    request validation          422  code ``validation_error`` (at most 20 problems, no input)
    a body over its limit       413  code ``payload_too_large``
    anything unexpected         500  code ``internal_error``

Every error body carries ``request_id``, the id also sent in ``X-Request-Id``.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.api.limits import PayloadTooLarge
from backend.api.request_context import current_request_id
from backend.api.schemas import ErrorResponse
from backend.domain import errors
from backend.secrets import SecretError
from backend.service import ports
from backend.service.sync import RetryLater

API_PREFIX = "/api/v1"

_DOMAIN_STATUS: tuple[tuple[type[errors.DomainError], int], ...] = (
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.LastAdmin, 409),
    (errors.AlreadyMember, 409),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.InvalidRequest, 400),
    (errors.StatementFileInvalid, 422),
    (errors.RuleViolation, 409),
)

_ISSUER_STATUS: tuple[tuple[type[ports.IssuerError], int], ...] = (
    (ports.RateLimited, 503),
    (ports.ReauthRequired, 409),
    (ports.ConsentRevoked, 409),
    (ports.ConsentRefused, 409),
    # A refused legacy login is the person's typing, not an issuer outage.
    (ports.LegacyLoginFailed, 400),
)

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def domain_status(exc: errors.DomainError) -> int:
    for cls, status in _DOMAIN_STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def issuer_status(exc: ports.IssuerError) -> int:
    for cls, status in _ISSUER_STATUS:
        if isinstance(exc, cls):
            return status
    return 502


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    rule: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "rule": rule,
            "message": message,
            "details": details or {},
            "request_id": current_request_id(),
        }
    }
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


def too_large_response(message: str, details: dict[str, Any]) -> JSONResponse:
    """The 413 of a body over its limit."""
    # No `Connection: close`: the server discards the rest of the body as it comes, so
    # the client, still sending, gets to read this answer.
    return error_response(413, "payload_too_large", message, details=details)


def _retry_after(seconds: float | None) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))} if seconds else {}


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, errors.Unauthenticated) else None
    return error_response(
        domain_status(exc),
        exc.code,
        str(exc),
        rule=exc.rule,
        details=exc.details,
        headers=headers,
    )


async def _issuer_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ports.IssuerError)
    details: dict[str, Any] = {"issuer": exc.issuer}
    headers: dict[str, str] = {}
    if isinstance(exc, ports.RateLimited):
        details["retry_after"] = exc.retry_after
        headers = _retry_after(exc.retry_after or 30.0)
    return error_response(issuer_status(exc), exc.code, str(exc), details=details, headers=headers)


async def _retry_later(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RetryLater)
    return error_response(
        503,
        exc.code,
        "the issuer is busy or unavailable; try again later",
        details={"retry_after": exc.delay},
        headers=_retry_after(exc.delay),
    )


MAX_VALIDATION_PROBLEMS = 20
_MAX_TEXT = 200
_MAX_NAME = 64
_MAX_LOC = 8


def _short(value: object, limit: int = _MAX_TEXT) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_problems(found: list[Any]) -> dict[str, Any]:
    """A bounded account of what failed: where, what and why; never the input itself.

    The rejected input is left out (it may be a password on its way to an issuer, or
    megabytes sent to make the answer huge); so are pydantic's ``ctx`` and ``url``.
    """
    problems = [
        {
            "loc": [_short(part, _MAX_NAME) for part in list(err.get("loc", ()))[:_MAX_LOC]],
            "msg": _short(err.get("msg", "")),
            "type": _short(err.get("type", "")),
        }
        for err in found[:MAX_VALIDATION_PROBLEMS]
    ]
    return {"errors": problems, "count": len(found), "truncated": len(found) > len(problems)}


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        422,
        "validation_error",
        "request validation failed",
        details=validation_problems(list(exc.errors())),
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # The simulated issuers keep their own answers (an issuer's, not renkei's).
    if request.url.path.startswith("/sandbox/"):
        return await http_exception_handler(request, exc)
    if isinstance(exc, PayloadTooLarge):
        return too_large_response(str(exc.detail), exc.details)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(
        exc.status_code,
        _HTTP_CODES.get(exc.status_code, "http_error"),
        str(_short(exc.detail)) if isinstance(exc.detail, str) else "request refused",
        headers=headers,
    )


async def _secret_error(request: Request, exc: Exception) -> Response:
    # Not the caller's fault and nothing to retry: the operator must restore the key.
    return error_response(
        503,
        "secret_unreadable",
        "a stored secret of this account cannot be decrypted with the service's keys; "
        "the operator restores the key it was sealed with (renkei keys status)",
    )


async def _database_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    if not exc.connection_invalidated:
        raise exc  # a real fault of renkei's: the 500 of RequestContext, logged
    # The database restarted or cut this connection: the pool drops it and the next
    # request gets a fresh one, so the caller (an issuer's webhook too) just asks again.
    return error_response(
        503,
        "database_unavailable",
        "the service lost its database connection; try again in a moment",
        headers=_retry_after(1),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of the back end in the envelope shape."""
    app.add_exception_handler(errors.DomainError, _domain_error)
    app.add_exception_handler(ports.IssuerError, _issuer_error)
    app.add_exception_handler(RetryLater, _retry_later)
    app.add_exception_handler(SecretError, _secret_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def _doc(description: str, *codes: str) -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in codes)
    return {"model": ErrorResponse, "description": f"{description} Codes: {listed}."}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc(
        "The request cannot be carried out as sent.", "invalid_request", "legacy_login_failed"
    ),
    413: _doc(
        "The request body is larger than the operation's limit (see its description), "
        "or its JSON is nested too deeply or has too many keys.",
        "payload_too_large",
    ),
    401: _doc("Missing or unknown bearer token, or a bad webhook signature.", "unauthenticated"),
    403: _doc("The caller's role in the office is too low.", "forbidden"),
    404: _doc("No such object, or not visible to the caller.", "not_found"),
    409: _doc(
        "A rule of the domain refuses the operation (see `rule`).",
        "api_not_released",
        "card_already_linked",
        "combined_login_not_supported",
        "wrong_myjcb_id",
        "myjcb_id_already_linked",
        "revoke_at_issuer_first",
        "one_card_per_authorization",
        "supplementary_not_registered",
        "card_mismatch",
        "account_exists_for_card",
        "card_not_eligible",
        "invalid_state",
        "reauth_required",
        "consent_revoked",
        "consent_refused",
    ),
    422: _doc(
        "The request body or an uploaded statement file cannot be read.",
        "validation_error",
        "statement_file_invalid",
    ),
    502: _doc("The card issuer failed or answered nonsense.", "issuer_unavailable", "bad_payload"),
    503: _doc(
        "The card issuer is busy, or the service lost its database connection; see Retry-After.",
        "rate_limited",
        "issuer_unavailable",
        "database_unavailable",
    ),
}
"""Shared by every router so that the OpenAPI document lists the error codes."""
