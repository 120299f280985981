"""OAuth tokens of a link: decrypted only to call the issuer, rotated pairs saved at once."""

from __future__ import annotations

import datetime as dt
import json

from backend.domain.consent import from_epoch
from backend.domain.model import ApiLink
from backend.service.context import ServiceContext
from backend.service.ports import TokenSaver, TokenSet


def seal_tokens(ctx: ServiceContext, tokens: TokenSet) -> bytes:
    return ctx.secrets.encrypt(
        json.dumps(
            {
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "expires_at": tokens.expires_at,
                "scope": tokens.scope,
            }
        )
    )


def load_tokens(ctx: ServiceContext, link: ApiLink) -> TokenSet:
    data = json.loads(ctx.secrets.decrypt(link.tokens))
    return TokenSet(
        access_token=data["access_token"],
        refresh_token=data.get("refresh_token"),
        expires_at=data.get("expires_at"),
        scope=data.get("scope") or "",
    )


def expiry_of(tokens: TokenSet) -> dt.datetime | None:
    if tokens.expires_at is None:
        return None
    return dt.datetime.fromtimestamp(tokens.expires_at, dt.UTC)


def consent_end_of(tokens: TokenSet) -> dt.datetime | None:
    """When the consent behind ``tokens`` ends, as the issuer's token answer said."""
    return from_epoch(tokens.consent_expires_at)


def saver_for(ctx: ServiceContext, link_id: str) -> TokenSaver:
    """Persist a rotated pair in its own transaction, at once.

    Refresh tokens work once: a pair rotated by the issuer but not stored would
    lose the grant, so this commits before the caller goes on.
    """

    async def save(tokens: TokenSet) -> None:
        async with ctx.uow() as uow:
            await uow.repo.set_link_tokens(
                link_id,
                seal_tokens(ctx, tokens),
                expiry_of(tokens),
                consent_expires_at=consent_end_of(tokens),
            )
            await uow.commit()

    return save
