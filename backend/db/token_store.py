"""API tokens of members: only a SHA-256 of each token is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from backend.domain import identity


class SqlTokenStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def email_for_token_hash(self, token_hash: str) -> str | None:
        async with self._sessions() as session:
            email = await session.scalar(
                select(t.api_tokens.c.email).where(t.api_tokens.c.token_hash == token_hash)
            )
            return str(email) if email is not None else None

    async def create(self, email: str, name: str) -> str:
        """A new token for ``email``; the plain token is answered once and never stored."""
        token = "rk_" + secrets.token_urlsafe(32)
        async with self._sessions() as session:
            await session.execute(
                t.api_tokens.insert().values(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    email=identity.normalize_email(email),
                    name=name,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
            await session.commit()
        return token
