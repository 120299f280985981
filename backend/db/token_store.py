"""API tokens of members: only a SHA-256 of each token is stored.

A token may carry an expiry and may be revoked; either makes it useless at once (each
request looks it up). A revoked token's row stays, so a member's list shows when.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from backend.domain import identity
from backend.domain.model import new_id
from backend.service.api_tokens import TokenRecord

TOKEN_PREFIX = "rk_"


def hash_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _record(row: Row[Any, Any, Any, Any, Any, Any]) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        email=row.email,
        name=row.name,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


_COLUMNS = (
    t.api_tokens.c.id,
    t.api_tokens.c.email,
    t.api_tokens.c.name,
    t.api_tokens.c.created_at,
    t.api_tokens.c.expires_at,
    t.api_tokens.c.revoked_at,
)


class SqlTokenStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    async def lookup(self, token_hash: str) -> TokenRecord | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(*_COLUMNS).where(t.api_tokens.c.token_hash == token_hash)
                )
            ).first()
            return _record(row) if row is not None else None

    async def create(self, email: str, name: str, *, expires_in: dt.timedelta | None = None) -> str:
        """A new token for ``email``; the plain token is answered once and never stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        async with self._sessions() as session:
            await session.execute(
                t.api_tokens.insert().values(
                    token_hash=hash_of(token),
                    id=new_id(),
                    email=identity.normalize_email(email),
                    name=name,
                    created_at=now,
                    expires_at=now + expires_in if expires_in is not None else None,
                )
            )
            await session.commit()
        return token

    async def list_for(self, email: str) -> list[TokenRecord]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(*_COLUMNS)
                .where(t.api_tokens.c.email == email.strip().lower())
                .order_by(t.api_tokens.c.created_at, t.api_tokens.c.id)
            )
            return [_record(row) for row in rows]

    async def revoke(self, token_id: str, *, email: str | None = None) -> TokenRecord | None:
        """Revoke one token by id (only among ``email``'s when given); None: no such token.

        Revoking twice keeps the first time.
        """
        query = select(*_COLUMNS).where(t.api_tokens.c.id == token_id)
        if email is not None:
            query = query.where(t.api_tokens.c.email == email.strip().lower())
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
            if row is None:
                return None
            await session.execute(
                update(t.api_tokens)
                .where(t.api_tokens.c.id == token_id, t.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            await session.commit()
            row = (await session.execute(query)).first()
            assert row is not None
            return _record(row)

    async def revoke_token(self, token: str) -> TokenRecord | None:
        """Revoke by the token itself (the one an operator holds when it leaked)."""
        record = await self.lookup(hash_of(token.strip()))
        return await self.revoke(record.id) if record is not None else None
