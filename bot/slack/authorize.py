"""Which bot token answers a workspace, found once and then kept (many workspaces).

bolt's installation-store authorize reads the installation from the database and asks
Slack's ``auth.test`` for every request, before the listener can ack: a slow
``auth.test`` made every ack as slow. Here bolt's own authorize runs with its cache
(``auth.test`` once per token) and its answer is kept per workspace and user for a
while, so an ack waits on neither the database nor Slack. An uninstall or a revoked
token forgets the workspace at once in this process; another process keeps its copy
at most ``KEPT_FOR`` (a revoked token is then refused by Slack, nothing worse).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import (
    AsyncAuthorize,
    AsyncInstallationStoreAuthorize,
)
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

KEPT_FOR = 600.0  # seconds
CACHED_MAX = 10_000  # a bound on the cache (workspaces × people)

Key = tuple[str | None, str | None, str | None]


class CachedAuthorize(AsyncAuthorize):
    def __init__(
        self,
        installations: AsyncInstallationStore,
        client: AsyncWebClient,
        *,
        client_id: str,
        client_secret: str,
        kept_for: float = KEPT_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._inner = AsyncInstallationStoreAuthorize(
            logger=log,
            installation_store=installations,
            client_id=client_id,
            client_secret=client_secret,
            cache_enabled=True,  # auth.test once per token
            client=client,
        )
        self._kept_for = kept_for
        self._clock = clock
        self._cache: dict[Key, tuple[float, AuthorizeResult]] = {}

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        # Per user too: bolt puts the result's user into the request's context.
        key = (enterprise_id, team_id, user_id)
        now = self._clock()
        kept = self._cache.get(key)
        if kept is not None and now - kept[0] < self._kept_for:
            return kept[1]
        found = await self._inner(
            context=context,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            actor_enterprise_id=actor_enterprise_id,
            actor_team_id=actor_team_id,
            actor_user_id=actor_user_id,
        )
        if found is None:
            self._cache.pop(key, None)  # not installed: asked again next time
            return None
        if len(self._cache) >= CACHED_MAX:
            self._cache.clear()  # rebuilt as requests come
        self._cache[key] = (now, found)
        return found

    def forget(self, enterprise_id: str | None, team_id: str | None) -> None:
        """The workspace's tokens are gone: nothing kept of it answers again."""
        for key in [k for k in self._cache if k[:2] == (enterprise_id, team_id)]:
            del self._cache[key]
        self._inner.authorize_result_cache.clear()
