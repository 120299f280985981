"""Sending one request to an issuer and turning every failure into a typed error.

These helpers are the boundary: nothing from httpx or authlib is raised past
them. They raise either a typed ``IssuerError`` (final) or ``Transient`` (the
retry loop may try again).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import httpx
from authlib.integrations.base_client import OAuthError

from connectors.issuers import payloads, translate
from connectors.issuers.errors import BadPayload, IssuerError
from connectors.issuers.retry import Transient

T = TypeVar("T")


def fail(failure: IssuerError | Transient, cause: BaseException | None = None) -> NoReturn:
    """Raise ``failure``, chaining ``cause`` as the library exception behind it."""
    if isinstance(failure, Transient) and cause is not None and failure.cause is None:
        failure.cause = cause
    raise failure from cause


async def guarded(call: Awaitable[T], *, issuer: str, what: str, repeatable: bool) -> T:
    """Await one httpx or authlib call, translating whatever it raises.

    The call may be a request of authlib's ``AsyncOAuth2Client``, which refreshes
    an expired access token on the way: its failures (``OAuthError``) are
    translated here as well, and the token-endpoint guard below has already
    translated HTTP-level failures of the refresh.
    """
    try:
        return await call
    except httpx.TransportError as exc:  # timeouts, refused connections, broken streams
        fail(translate.transport_failure(exc, issuer=issuer, what=what, repeatable=repeatable), exc)
    except httpx.HTTPStatusError as exc:  # authlib's raise_for_status on a token answer
        fail(
            translate.status_failure(exc.response, issuer=issuer, what=what, repeatable=False), exc
        )
    except OAuthError as exc:
        fail(translate.oauth_failure(exc.error, exc.description, issuer=issuer, what=what), exc)


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    issuer: str,
    what: str,
    repeatable: bool,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; any answer is returned, a missing answer is translated."""
    return await guarded(
        client.request(method, url, **kwargs), issuer=issuer, what=what, repeatable=repeatable
    )


def read_json(response: httpx.Response, *, issuer: str, what: str, repeatable: bool) -> Any:
    """The JSON body of a 2xx answer.

    A body that is not JSON at all is taken for a damaged transfer (a proxy
    page, a cut connection) and retried when the request is repeatable; JSON
    of the wrong shape is the issuer's deterministic answer and fails at once
    (see ``parse``).
    """
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        error = translate.unreadable(what, issuer=issuer, reason="answer is not JSON")
        fail(Transient(error, exc) if repeatable else error, exc)


def parse(reader: Callable[[Any], T], data: Any, *, issuer: str, what: str) -> T:
    """Apply a reader of ``payloads``; a missing or mistyped field is ``BadPayload``."""
    try:
        return reader(data)
    except payloads.PayloadError as exc:
        raise translate.unreadable(what, issuer=issuer, reason=str(exc)) from exc


def token_endpoint_guard(issuer: str) -> Callable[[httpx.Response], httpx.Response]:
    """An authlib compliance hook run on every token answer before authlib reads it.

    authlib would raise a bare ``HTTPStatusError`` or ``ValueError`` for a 429,
    a 5xx or a body that is not a JSON object; this hook raises the typed error
    instead. Token requests are not repeatable: an authorization code works
    once, and a refresh token rotates, so a request that may have reached the
    issuer is never sent twice (only 429 and 503, which the issuer did not act
    on, are retried).
    """
    what = "POST /oauth/token"

    def guard(response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status == 429 or status >= 500:
            fail(translate.status_failure(response, issuer=issuer, what=what, repeatable=False))
        try:
            body: Any = response.json()
        except ValueError as exc:
            if response.is_success:
                raise translate.unreadable(
                    what, issuer=issuer, reason="answer is not JSON"
                ) from exc
            fail(
                translate.status_failure(response, issuer=issuer, what=what, repeatable=False), exc
            )
        if not isinstance(body, dict):
            if response.is_success:
                raise translate.unreadable(what, issuer=issuer, reason="answer is not an object")
            fail(translate.status_failure(response, issuer=issuer, what=what, repeatable=False))
        if not response.is_success and "error" not in body:
            fail(translate.status_failure(response, issuer=issuer, what=what, repeatable=False))
        if response.is_success and not isinstance(body.get("access_token"), str):
            raise BadPayload(f"{issuer}: {what}: answer has no access_token", issuer=issuer)
        return response

    return guard
