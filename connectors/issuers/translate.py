"""Translating httpx and authlib failures into the typed error tree.

Every function here returns (never raises) the error to raise, so the caller
writes ``raise error from exc`` at the boundary and the traceback keeps the
library exception. Whether a failure is worth a retry is decided here too: a
failure is wrapped in ``Transient`` only when repeating the request is safe.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from typing import Any

import httpx

from connectors.issuers.errors import (
    BadPayload,
    ConsentRefused,
    ConsentRevoked,
    InvalidCursor,
    IssuerError,
    IssuerUnavailable,
    RateLimited,
    ReauthRequired,
)
from connectors.issuers.retry import Transient

# Anything that looks like a token, code or session id is cut out of issuer text
# before it reaches an exception message (and so a log line).
_SECRET_LIKE = re.compile(r"[A-Za-z0-9_\-.~+/=]{20,}")


def scrub(text: str, limit: int = 200) -> str:
    """Issuer-supplied text made safe for a message: no token-like runs, bounded."""
    return _SECRET_LIKE.sub("[redacted]", text)[:limit]


def oauth_error_fields(response: httpx.Response) -> tuple[str | None, str]:
    """The RFC 6749/6750 ``error`` and ``error_description`` of an error answer.

    Reads the JSON body first, then the ``WWW-Authenticate`` header (RFC 6750 §3).
    """
    error: str | None = None
    description = ""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            error = body["error"]
        if isinstance(body.get("error_description"), str):
            description = body["error_description"]
    header = response.headers.get("www-authenticate", "")
    if error is None:
        match = re.search(r'error="([^"]*)"', header)
        error = match.group(1) if match else None
    if not description:
        match = re.search(r'error_description="([^"]*)"', header)
        description = match.group(1) if match else ""
    return error, description


def says_stopped(description: str) -> bool:
    """Whether the issuer's text says the grant itself was stopped (R10, R16).

    Only a positive statement counts: an unusable token alone must not be taken
    for a stopped link, or an Amex account could be deleted while its grant is
    still active at the issuer, which blocks the card for good (R10).
    """
    return "stop" in description.lower()


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds of a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max((when - now).total_seconds(), 0.0)


def status_failure(
    response: httpx.Response, *, issuer: str, what: str, repeatable: bool
) -> IssuerError | Transient:
    """The error for a non-2xx answer of the issuer.

    Args:
        response: The answer.
        issuer: ``amex`` or ``jcb``.
        what: Method and path, for the message.
        repeatable: Whether sending the same request again is harmless. 429 and
            503 are retried regardless: the issuer says it did not act on them.

    Returns:
        A typed error, or a ``Transient`` wrapping one when a retry may help.
    """
    status = response.status_code
    error, description = oauth_error_fields(response)
    detail = f"{issuer}: {what} answered {status}" + (f" {error}" if error else "")
    if description:
        detail += f" ({scrub(description)})"
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Transient(RateLimited(detail, issuer=issuer, retry_after=retry_after))
    if status >= 500:
        unavailable = IssuerUnavailable(detail, issuer=issuer)
        return Transient(unavailable) if repeatable or status == 503 else unavailable
    if status == 401 or error in ("invalid_token", "invalid_grant"):
        if says_stopped(description):
            return ConsentRevoked(detail, issuer=issuer)
        return ReauthRequired(detail, issuer=issuer)
    if error == "access_denied":
        return ConsentRefused(detail, issuer=issuer)
    if error == "invalid_cursor":
        return InvalidCursor(detail, issuer=issuer)
    return IssuerError(detail, issuer=issuer)


def transport_failure(
    exc: httpx.TransportError, *, issuer: str, what: str, repeatable: bool
) -> IssuerError | Transient:
    """The error for a request that got no answer (timeout, refused connection...).

    A request that never left (connect failure, connect or pool timeout) is always
    safe to send again; one that may have reached the issuer only when
    ``repeatable``.
    """
    kind = type(exc).__name__
    unavailable = IssuerUnavailable(f"{issuer}: {what} failed: {kind}", issuer=issuer)
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return Transient(unavailable, exc) if repeatable or never_sent else unavailable


def oauth_failure(
    error: str | None, description: str | None, *, issuer: str, what: str
) -> IssuerError:
    """The error for an OAuth error code raised by authlib (token endpoint, refresh).

    ``invalid_grant`` means the code or refresh token is used, expired, unknown,
    or belongs to a stopped grant (``ConsentRevoked``), or, at the code exchange,
    that the card is already linked under another grant (``ConsentRefused``, R5).
    """
    text = description or ""
    detail = f"{issuer}: {what}: {error or 'oauth_error'}" + (f" ({scrub(text)})" if text else "")
    if error == "invalid_grant" and "already linked" in text.lower():
        # R5: another authorization of the same Amex card finished first; the
        # contract has no error code of its own for this, only the description.
        return ConsentRefused(detail, issuer=issuer)
    if error in ("invalid_grant", "invalid_token", "token_invalid", "token_expired"):
        if says_stopped(text):
            return ConsentRevoked(detail, issuer=issuer)
        return ReauthRequired(detail, issuer=issuer)
    if error == "access_denied":
        return ConsentRefused(detail, issuer=issuer)
    return IssuerError(detail, issuer=issuer)


def unreadable(what: str, *, issuer: str, reason: str) -> BadPayload:
    """The error for an answer that is not the JSON the contract describes."""
    return BadPayload(f"{issuer}: {what}: {scrub(reason)}", issuer=issuer)
