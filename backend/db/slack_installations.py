"""bolt's OAuth installation and state stores on renkei's database (SQLAlchemy async).

slack_sdk defines these two ports (``AsyncInstallationStore``, ``AsyncOAuthStateStore``);
the Slack front end is handed the adapters by the composition root.

Installations hold bot tokens: they are kept encrypted with renkei's secret keys,
like the issuers' tokens.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from backend.service.context import SecretBox

log = logging.getLogger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _plain(value: Any) -> Any:
    return value.timestamp() if isinstance(value, dt.datetime) else value


class SqlInstallationStore(AsyncInstallationStore):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client_id: str,
        box: SecretBox,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self.client_id = client_id
        self._box = box
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        return log

    def _seal(self, installation: Installation) -> bytes:
        data = {k: _plain(v) for k, v in installation.to_dict_for_copying().items()}
        return self._box.encrypt(json.dumps(data, default=str))

    def _open(self, sealed: bytes) -> Installation:
        return Installation(**json.loads(self._box.decrypt(sealed)))

    async def async_save(self, installation: Installation) -> None:
        i = t.slack_installations
        async with self._sessions() as session:
            await session.execute(
                i.insert().values(
                    client_id=self.client_id,
                    enterprise_id=installation.enterprise_id,
                    team_id=installation.team_id,
                    user_id=installation.user_id,
                    is_enterprise_install=int(bool(installation.is_enterprise_install)),
                    has_bot=int(installation.bot_token is not None),
                    sealed=self._seal(installation),
                    installed_at=self._clock(),
                )
            )
            await session.commit()

    async def async_save_bot(self, bot: Bot) -> None:
        # A bot alone (token rotation) is saved as an installation without a user.
        installation = Installation(
            app_id=bot.app_id,
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            bot_refresh_token=bot.bot_refresh_token,
            bot_token_expires_at=bot.bot_token_expires_at,
            user_id="",
            is_enterprise_install=bot.is_enterprise_install,
        )
        await self.async_save(installation)

    def _where(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> list[Any]:
        i = t.slack_installations
        clauses = [i.c.client_id == self.client_id, i.c.enterprise_id.is_(None)]
        if enterprise_id is not None:
            clauses[1] = i.c.enterprise_id == enterprise_id
        if is_enterprise_install:
            return clauses  # an org-wide install answers for every team of the org
        if team_id is not None:
            clauses.append(i.c.team_id == team_id)
        return clauses

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        i = t.slack_installations
        clauses = self._where(enterprise_id, team_id, is_enterprise_install)
        if user_id is not None:
            clauses.append(i.c.user_id == user_id)
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(i).where(*clauses).order_by(i.c.installed_at.desc(), i.c.id.desc())
                )
            ).first()
        return self._open(row.sealed) if row is not None else None

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        i = t.slack_installations
        clauses = [*self._where(enterprise_id, team_id, is_enterprise_install), i.c.has_bot == 1]
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(i).where(*clauses).order_by(i.c.installed_at.desc(), i.c.id.desc())
                )
            ).first()
        return self._open(row.sealed).to_bot() if row is not None else None

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._delete(enterprise_id, team_id, None)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await self._delete(enterprise_id, team_id, user_id)

    async def _delete(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> None:
        i = t.slack_installations
        clauses = self._where(enterprise_id, team_id, False)
        if user_id is not None:
            clauses.append(i.c.user_id == user_id)
        async with self._sessions() as session:
            await session.execute(delete(i).where(*clauses))
            await session.commit()


class SqlOAuthStateStore(AsyncOAuthStateStore):
    """One row per install attempt; consumed once, refused after it expires."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        expiration_seconds: int = 600,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self.expiration = dt.timedelta(seconds=expiration_seconds)
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        async with self._sessions() as session:
            await session.execute(
                t.slack_oauth_states.insert().values(
                    state=state, expire_at=self._clock() + self.expiration
                )
            )
            await session.commit()
        return state

    async def async_consume(self, state: str) -> bool:
        s = t.slack_oauth_states
        async with self._sessions() as session:
            result = await session.execute(
                delete(s).where(s.c.state == state, s.c.expire_at > self._clock())
            )
            await session.commit()
        return bool(getattr(result, "rowcount", 0))
