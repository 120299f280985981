"""The REST API under ``/api/v1``: the router and the error handlers.

The composition root creates the FastAPI app, fills ``app.state`` and includes
``create_api_router()``.

``app.state`` read here:

- ``services``: ``ServiceContext``
- ``admin_token``: ``str | None``, the support administrator's bearer token
- ``token_resolver``: ``TokenStore``, bearer-token hash → the token's member, expiry and
  revocation; lists and revokes a member's own tokens
- ``parse_statement_file``: ``(data: bytes, issuer: str) -> list[ParsedStatementGroup]``
- ``issuer_webhook_secrets``: ``Mapping[str, str]``, issuer name → signing secret
- ``service_token``: ``str | None``, the assistant's token, acting for ``X-Renkei-Act-As``
- ``export_secret``: ``str``, signs the short-lived export links
- ``issuer_sites``: ``Mapping[str, IssuerInfoOut]``, the issuers' member-site links
"""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.errors import API_PREFIX, install_error_handlers
from backend.api.routers import (
    accounts,
    events,
    issuer_webhooks,
    issuers,
    oauth,
    offices,
    statements,
    tokens,
)

__all__ = ["API_PREFIX", "create_api_router", "install_error_handlers"]


def create_api_router() -> APIRouter:
    """Every route of the REST API, under ``/api/v1``."""
    api = APIRouter(prefix=API_PREFIX)
    for module in (offices, accounts, statements, events, oauth, issuer_webhooks, issuers, tokens):
        api.include_router(module.router)
    api.include_router(offices.invitations_router)
    api.include_router(statements.exports_router)
    return api
