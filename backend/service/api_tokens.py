"""Members' API tokens: a member sees and revokes their own, never anyone else's."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from backend.domain import errors
from backend.service.context import Principal


@dataclass(frozen=True)
class TokenRecord:
    """What is kept of a token: never the token, only its id, owner and lifetime."""

    id: str
    email: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def usable(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class TokenStore(Protocol):
    async def lookup(self, token_hash: str) -> TokenRecord | None: ...

    async def list_for(self, email: str) -> list[TokenRecord]: ...

    async def revoke(self, token_id: str, *, email: str | None = None) -> TokenRecord | None: ...


def _own(principal: Principal) -> str:
    if principal.support_admin:
        # The support administrator's token is configuration, not a member's token.
        raise errors.Forbidden("the support administrator has no member tokens")
    return principal.email


async def list_own(store: TokenStore, principal: Principal) -> list[TokenRecord]:
    return await store.list_for(_own(principal))


async def revoke_own(store: TokenStore, principal: Principal, token_id: str) -> TokenRecord:
    """Revoke one of the caller's tokens; another member's token does not exist for them."""
    record = await store.revoke(token_id, email=_own(principal))
    if record is None:
        raise errors.NotFound("token not found", token_id=token_id)
    return record
