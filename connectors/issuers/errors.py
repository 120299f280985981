"""The one error tree of the issuer connectors.

The classes live in :mod:`backend.service.ports` (the port owns its errors, so the
use cases can catch them without importing a connector); this module re-exports
them so code next to the connectors has one obvious place to import from.
Library exceptions (httpx, authlib) never leave a connector: each is translated
at the boundary with ``raise X(...) from exc``::

    IssuerError                 base of everything a connector raises
    ├── ConsentRevoked          401 invalid_token "link stopped"; refresh refused because
    │                           the grant was stopped (member site, control API, RFC 7009)
    ├── ReauthRequired          401 invalid_token, invalid_grant on code exchange or
    │                           refresh (used, expired or unknown code or refresh token)
    ├── ConsentRefused          the issuer refused the grant itself (R5, R10, R13)
    ├── LegacyLoginFailed       legacy website refused the ID/password (401 login_failed)
    ├── RateLimited             429 after the retries, or a Retry-After above the cap;
    │                           ``retry_after`` holds the issuer's seconds when given
    ├── IssuerUnavailable       5xx, timeouts, connection errors (after the retries)
    └── BadPayload              unreadable JSON, missing or mistyped fields
        └── InvalidCursor       400 invalid_cursor: the sync starts again from the beginning

Any other answer the contract does not foresee (``invalid_client``, an unexpected
4xx) is raised as the base ``IssuerError``.
"""

from __future__ import annotations

from backend.service.ports import (
    BadPayload,
    ConsentRefused,
    ConsentRevoked,
    InvalidCursor,
    IssuerError,
    IssuerUnavailable,
    LegacyLoginFailed,
    RateLimited,
    ReauthRequired,
)

__all__ = [
    "BadPayload",
    "ConsentRefused",
    "ConsentRevoked",
    "InvalidCursor",
    "IssuerError",
    "IssuerUnavailable",
    "LegacyLoginFailed",
    "RateLimited",
    "ReauthRequired",
]
