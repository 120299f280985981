"""Dependencies of the routers: the service context and the authenticated caller."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Annotated, Protocol
from urllib.parse import unquote

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.domain import errors, identity
from backend.service.api_tokens import TokenRecord, TokenStore
from backend.service.context import Principal, ServiceContext
from backend.service.ports import ParsedStatementGroup


class TokenResolver(Protocol):
    async def lookup(self, token_hash: str) -> TokenRecord | None: ...


class StatementFileParser(Protocol):
    """Reads an issuer's statement file; raises ``StatementFileInvalid`` when it cannot."""

    def __call__(self, data: bytes, issuer: str) -> list[ParsedStatementGroup]: ...


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_bearer = HTTPBearer(auto_error=False, description="renkei API token")


def get_services(request: Request) -> ServiceContext:
    services: ServiceContext = request.app.state.services
    return services


ACT_AS_HEADER = "X-Renkei-Act-As"
"""Names the member the service token acts for: the email address, percent-encoded as
UTF-8 (RFC 3986), since an HTTP header carries ASCII only. A raw UTF-8 value is read too."""


def decode_act_as(value: str) -> str:
    """The member's email address from an ``X-Renkei-Act-As`` value.

    Raises:
        Unauthenticated: Missing, not UTF-8, or not an email address.
    """
    try:
        # Starlette hands header bytes over as Latin-1: undo that for a raw UTF-8 value.
        raw = value.encode("latin-1").decode("utf-8")
        return identity.normalize_email(unquote(raw, errors="strict"))
    except (UnicodeError, identity.InvalidIdentity) as exc:
        raise errors.Unauthenticated(
            f"the service token needs {ACT_AS_HEADER} with the member's email address"
        ) from exc


def _same(token: str, expected: str | None) -> bool:
    return bool(expected) and hmac.compare_digest(token.encode(), str(expected).encode())


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Bearer token → caller.

    The admin token acts as a support administrator over every office. The service
    token (the assistant's own) acts for the member named in ``X-Renkei-Act-As``, with
    that member's roles and nothing more.
    """
    if credentials is None or not credentials.credentials:
        raise errors.Unauthenticated("a bearer token is required")
    token = credentials.credentials
    if _same(token, getattr(request.app.state, "service_token", None)):
        return Principal(email=decode_act_as(request.headers.get(ACT_AS_HEADER) or ""))
    if _same(token, request.app.state.admin_token):
        return Principal(email="support@renkei.local", support_admin=True)
    resolver: TokenResolver = request.app.state.token_resolver
    record = await resolver.lookup(hash_token(token))
    if record is None:
        raise errors.Unauthenticated("unknown token")
    # Checked on every request: a revoked or expired token stops working at once.
    if record.revoked_at is not None:
        raise errors.Unauthenticated("this token was revoked", token_id=record.id)
    if not record.usable(get_services(request).clock()):
        raise errors.Unauthenticated("this token has expired", token_id=record.id)
    return Principal(email=record.email)


def get_token_store(request: Request) -> TokenStore:
    store: TokenStore = request.app.state.token_resolver
    return store


Services = Annotated[ServiceContext, Depends(get_services)]
Tokens = Annotated[TokenStore, Depends(get_token_store)]
Caller = Annotated[Principal, Depends(get_principal)]


def get_statement_parser(request: Request) -> StatementFileParser:
    parser: StatementFileParser = request.app.state.parse_statement_file
    return parser


def get_issuer_webhook_secrets(request: Request) -> Mapping[str, str]:
    secrets: Mapping[str, str] = getattr(request.app.state, "issuer_webhook_secrets", {})
    return secrets


StatementParser = Annotated[StatementFileParser, Depends(get_statement_parser)]
IssuerWebhookSecrets = Annotated[Mapping[str, str], Depends(get_issuer_webhook_secrets)]
