"""OAuth endpoints answering JSON: metadata (RFC 8414), token (RFC 6749), revocation (RFC 7009)."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from sandbox.grants import GRANTED_SCOPE
from sandbox.state import ClientRegistration, Issuer, SandboxState
from sandbox.tokens import OAuthError, exchange_code, refresh, revoke
from sandbox.web import issuer_base_url

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def metadata(base_url: str) -> dict[str, Any]:
    """The RFC 8414 authorization server metadata of an issuer at ``base_url``."""
    return {
        "issuer": base_url,
        "authorization_endpoint": f"{base_url}/oauth/authorize",
        "token_endpoint": f"{base_url}/oauth/token",
        "revocation_endpoint": f"{base_url}/oauth/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "scopes_supported": [GRANTED_SCOPE],
        # RFC 9207: every authorization response names this issuer in ``iss``, so a client
        # that serves several issuers on one redirect URI can tell them apart (mix-up).
        "authorization_response_iss_parameter_supported": True,
    }


def _oauth_error(exc: OAuthError, *, basic: bool = False) -> JSONResponse:
    headers = dict(NO_STORE)
    if exc.status == 401 and basic:
        headers["WWW-Authenticate"] = 'Basic realm="sandbox"'
    return JSONResponse(exc.as_json(), status_code=exc.status, headers=headers)


def uses_basic(authorization: str | None) -> bool:
    """Whether the request authenticates with HTTP Basic."""
    return authorization is not None and authorization[:6].lower() == "basic "


def authenticate_client(
    state: SandboxState, authorization: str | None, form: FormData
) -> tuple[ClientRegistration, bool]:
    """The client of a token or revocation request; returns it and whether Basic was used.

    Raises:
        OAuthError: ``invalid_request`` (two methods at once) or ``invalid_client``.
    """
    basic = uses_basic(authorization)
    posted_id = form.get("client_id")
    posted_secret = form.get("client_secret")
    if basic and posted_secret is not None:
        # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
        raise OAuthError("invalid_request", "use one client authentication method")
    if basic:
        assert authorization is not None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from exc
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401)
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
        client_id, secret = unquote(raw_id.replace("+", " ")), unquote(raw_secret.replace("+", " "))
        if posted_id is not None and posted_id != client_id:
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
    elif isinstance(posted_id, str) and isinstance(posted_secret, str):
        client_id, secret = posted_id, posted_secret
    else:
        raise OAuthError("invalid_client", "client authentication required", 401)
    client = state.clients.get(client_id)
    if client is None or not hmac.compare_digest(client.client_secret.encode(), secret.encode()):
        raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
    return client, basic


def _single(form: FormData, name: str) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        # RFC 6749 §3.2: request parameters MUST NOT be included more than once.
        raise OAuthError("invalid_request", f"repeated parameter {name}")
    return str(values[0]) if values else None


def build_oauth_router(state: SandboxState, issuer: Issuer) -> APIRouter:
    """Routes of the metadata, token and revocation endpoints.

    Args:
        state: The sandbox.
        issuer: The issuer these endpoints belong to.
    """
    router = APIRouter()

    @router.get("/.well-known/oauth-authorization-server", tags=["oauth"])
    async def server_metadata(request: Request) -> JSONResponse:
        return JSONResponse(metadata(issuer_base_url(request)))

    @router.post("/oauth/token", tags=["oauth"])
    async def token(request: Request) -> Response:
        form = await request.form()
        basic = uses_basic(request.headers.get("authorization"))
        try:
            client, _ = authenticate_client(state, request.headers.get("authorization"), form)
            grant_type = _single(form, "grant_type")
            if grant_type == "authorization_code":
                answer = exchange_code(
                    state,
                    issuer,
                    client_id=client.client_id,
                    code=_single(form, "code") or "",
                    redirect_uri=_single(form, "redirect_uri"),
                    code_verifier=_single(form, "code_verifier"),
                )
            elif grant_type == "refresh_token":
                answer = refresh(
                    state,
                    issuer,
                    client_id=client.client_id,
                    token=_single(form, "refresh_token") or "",
                )
            elif grant_type is None:
                raise OAuthError("invalid_request", "grant_type is required")
            else:
                raise OAuthError("unsupported_grant_type", f"{grant_type} is not supported")
        except OAuthError as exc:
            return _oauth_error(exc, basic=basic)
        return JSONResponse(answer.as_json(), headers=NO_STORE)

    @router.post("/oauth/revoke", tags=["oauth"])
    async def revoke_token(request: Request) -> Response:
        form = await request.form()
        basic = uses_basic(request.headers.get("authorization"))
        try:
            client, _ = authenticate_client(state, request.headers.get("authorization"), form)
            value = _single(form, "token")
            if not value:
                raise OAuthError("invalid_request", "token is required")
        except OAuthError as exc:
            return _oauth_error(exc, basic=basic)
        # RFC 7009 §2.2: the hint only speeds up the lookup; unknown tokens still get 200.
        revoke(state, issuer, client_id=client.client_id, token=value)
        return Response(status_code=200, headers=NO_STORE)

    return router
