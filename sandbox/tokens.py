"""Authorization codes, access and refresh tokens: exchange, rotation, revocation, checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from sandbox.grants import renewed_grants, revoke_grant_tokens, stop_grant
from sandbox.state import (
    AccessToken,
    Grant,
    Issuer,
    IssuerData,
    RefreshToken,
    SandboxState,
    new_id,
)

# RFC 7636 §4.1: 43–128 characters of the unreserved set.
VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def as_json(self) -> dict[str, str]:
        """The JSON body of the error answer."""
        return {"error": self.error, "error_description": self.description}


class InvalidToken(Exception):
    """A bearer token the resource API refuses (RFC 6750 ``invalid_token``)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True)
class TokenAnswer:
    """A successful token endpoint answer."""

    access_token: str
    refresh_token: str
    expires_in: int
    scope: str
    consent_expires_at: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 body, with when the consent behind it ends (epoch seconds)."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }
        if self.consent_expires_at is not None:
            body["consent_expires_at"] = self.consent_expires_at
        return body


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def exchange_code(
    state: SandboxState,
    issuer: Issuer,
    *,
    client_id: str,
    code: str,
    redirect_uri: str | None,
    code_verifier: str | None,
) -> TokenAnswer:
    """The ``authorization_code`` grant.

    Raises:
        OAuthError: ``invalid_request`` or ``invalid_grant``.
    """
    if not code or redirect_uri is None or code_verifier is None:
        raise OAuthError("invalid_request", "code, redirect_uri and code_verifier are required")
    data = state.issuers[issuer]
    record = data.codes.get(code)
    if record is None or record.client_id != client_id:
        raise OAuthError("invalid_grant", "unknown authorization code")
    if record.used:
        # RFC 6749 §4.1.2: a replayed code revokes what it already produced.
        _revoke_family(data, code)
        raise OAuthError("invalid_grant", "authorization code already used")
    if state.now() > record.expires_at:
        raise OAuthError("invalid_grant", "authorization code expired")
    if redirect_uri != record.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
    if not VERIFIER.match(code_verifier):
        raise OAuthError("invalid_request", "code_verifier must be 43-128 unreserved characters")
    if not hmac.compare_digest(s256(code_verifier), record.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    grant = data.grants[record.grant_id]
    if grant.status == "stopped":
        raise OAuthError("invalid_grant", "link stopped")
    renewed = renewed_grants(state, issuer, grant)
    for card_id in grant.card_ids:
        holder = data.active_grant_holding(client_id, card_id)
        if holder is not None and holder.grant_id != grant.grant_id and holder not in renewed:
            # R5: another authorization of the same card was completed first.
            raise OAuthError("invalid_grant", f"card {card_id} is already linked")
    record.used = True
    # A consent given again near its end replaces the old one; the client knows (it
    # exchanged this code), so no `link.revoked` is sent for the old grant.
    for old in renewed:
        stop_grant(state, issuer, old, by="renewed")
    grant.status = "active"
    return _issue(state, data, grant, family=code)


def refresh(state: SandboxState, issuer: Issuer, *, client_id: str, token: str) -> TokenAnswer:
    """The ``refresh_token`` grant, rotating the refresh token.

    Raises:
        OAuthError: ``invalid_request`` or ``invalid_grant``.
    """
    if not token:
        raise OAuthError("invalid_request", "refresh_token is required")
    data = state.issuers[issuer]
    record = data.refresh_tokens.get(token)
    if record is None or record.client_id != client_id:
        raise OAuthError("invalid_grant", "unknown refresh token")
    grant = data.grants[record.grant_id]
    if grant.status == "stopped":
        raise OAuthError("invalid_grant", "link stopped")
    if record.revoked:
        raise OAuthError("invalid_grant", "refresh token revoked")
    if record.used:
        if _within_grace(state, issuer, data, record):
            # FAPI 2.0 §5.3.2.1: the previous refresh token may be used again for a short
            # while (a client whose answer was lost retries); what its first use produced
            # is retired, so one chain stays alive.
            _retire_successor(data, record)
        else:
            # RFC 9700 §4.14.2: reuse of a rotated token revokes the whole chain.
            _revoke_family(data, record.family)
            raise OAuthError("invalid_grant", "refresh token already used")
    record.used = True
    record.used_at = state.now()
    answer = _issue(state, data, grant, family=record.family)
    record.successor = answer.refresh_token
    return answer


def revoke(state: SandboxState, issuer: Issuer, *, client_id: str, token: str) -> None:
    """RFC 7009 revocation; unknown tokens and other clients' tokens are ignored.

    A refresh token takes the grant's access tokens with it. For JCB it also
    stops the grant; for Amex the grant stays active until it is stopped on the
    member site (R10).
    """
    data = state.issuers[issuer]
    access = data.access_tokens.get(token)
    if access is not None and access.client_id == client_id:
        access.revoked = True
        return
    record = data.refresh_tokens.get(token)
    if record is None or record.client_id != client_id:
        return
    grant = data.grants[record.grant_id]
    if issuer == "jcb":
        stop_grant(state, issuer, grant, by="revocation")
    else:
        # R10: revoking tokens does not stop an Amex link; the card stays taken (R5).
        revoke_grant_tokens(data, grant.grant_id)


def authenticate_bearer(state: SandboxState, issuer: Issuer, authorization: str | None) -> Grant:
    """The grant behind a ``Bearer`` token of the resource API.

    Raises:
        InvalidToken: Missing, unknown, expired, revoked, or the link was stopped.
    """
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise InvalidToken("missing bearer token")
    data = state.issuers[issuer]
    access = data.access_tokens.get(value.strip())
    if access is None:
        raise InvalidToken("unknown token")
    grant = data.grants[access.grant_id]
    if grant.status == "stopped":
        raise InvalidToken("link stopped")
    if access.revoked:
        raise InvalidToken("token revoked")
    if state.now() >= access.expires_at:
        raise InvalidToken("token expired")
    return grant


def _issue(state: SandboxState, data: IssuerData, grant: Grant, *, family: str) -> TokenAnswer:
    ttl = state.settings.access_token_ttl
    refresh_token = RefreshToken(
        token=new_id("rt", 24),
        client_id=grant.client_id,
        grant_id=grant.grant_id,
        family=family,
    )
    access = AccessToken(
        token=new_id("at", 24),
        client_id=grant.client_id,
        grant_id=grant.grant_id,
        family=family,
        expires_at=state.now() + ttl,
        refresh_token=refresh_token.token,
    )
    data.access_tokens[access.token] = access
    data.refresh_tokens[refresh_token.token] = refresh_token
    expires = None if grant.expires_at is None else int(grant.expires_at)
    return TokenAnswer(access.token, refresh_token.token, ttl, grant.scope, expires)


def _within_grace(
    state: SandboxState, issuer: Issuer, data: IssuerData, record: RefreshToken
) -> bool:
    """Whether a second use of ``record`` is the retry the grace policy lets through.

    Only the newest link of the chain qualifies: once its successor was used in turn,
    the client evidently got the answer, and an old token coming back is a thief's.
    """
    settings = state.settings.of(issuer)
    if settings.refresh_policy != "grace" or record.used_at is None:
        return False
    successor = data.refresh_tokens.get(record.successor or "")
    if successor is not None and (successor.used or successor.revoked):
        return False
    return state.now() - record.used_at <= settings.refresh_grace_seconds


def _retire_successor(data: IssuerData, record: RefreshToken) -> None:
    successor = data.refresh_tokens.get(record.successor or "")
    if successor is None:
        return
    successor.revoked = True
    for access in data.access_tokens.values():
        if access.refresh_token == successor.token:
            access.revoked = True


def _revoke_family(data: IssuerData, family: str) -> None:
    for access in data.access_tokens.values():
        if access.family == family:
            access.revoked = True
    for refresh_token in data.refresh_tokens.values():
        if refresh_token.family == family:
            refresh_token.revoked = True
