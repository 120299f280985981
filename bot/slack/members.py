"""Slack users as renkei members: users.info's profile email is the member's email.

The mapping is cached in ``slack_users``; whether the member may do a thing is never
cached: every action goes to the back end as that member, which checks the role.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from backend.domain import identity
from bot.slack.errors import NoEmail, NotAMember, ProfileUnreadable
from bot.slack.ports import SlackMember, SlackStore
from connectors.backend_client import BackendClient
from statemachine.port import OfficeInfo

# A changed Slack profile email is picked up after this long.
REFRESH_AFTER = dt.timedelta(hours=1)
# How long "this email is a member somewhere" is believed without asking the back end.
# It only decides whether to start a conversation; every step after it is checked by the
# back end against the member's role at that moment, so a removal takes effect at once.
OFFICES_FRESH_FOR = dt.timedelta(minutes=1)
# A bound on each per-process cache.
CACHED_MAX = 10_000


def slack_locale(value: object) -> str:
    return "en" if str(value or "").lower().startswith("en") else "ja"


class Members:
    def __init__(self, store: SlackStore, backend_http: httpx.AsyncClient) -> None:
        self.store = store
        self.backend_http = backend_http
        self._offices: dict[str, tuple[dt.datetime, list[OfficeInfo]]] = {}
        # Read before each ack: kept in memory so an ack never waits on the database.
        # Only a display preference; ``resolve`` refreshes it from Slack every hour.
        self._locales: dict[tuple[str, str], str] = {}

    async def cached_locale(self, team_id: str, user_id: str) -> str:
        """The locale known without asking Slack (before an ack, every millisecond counts)."""
        locale = self._locales.get((team_id, user_id))
        if locale is None:
            known = await self.store.member(team_id, user_id)
            if known is None:
                return "ja"  # not remembered: resolve will learn it from Slack
            locale = self._remember_locale(known)
        return locale

    def _remember_locale(self, member: SlackMember) -> str:
        if len(self._locales) >= CACHED_MAX:
            self._locales.clear()  # rebuilt from the database as people come back
        self._locales[(member.team_id, member.user_id)] = member.locale
        return member.locale

    async def resolve(self, client: AsyncWebClient, team_id: str, user_id: str) -> SlackMember:
        """The member behind a Slack user; NoEmail when Slack shows no email,
        ProfileUnreadable when Slack does not answer users.info."""
        known = await self.store.member(team_id, user_id)
        if (
            known is not None
            and known.email
            and self.store.clock() - known.updated_at < REFRESH_AFTER
        ):
            self._remember_locale(known)
            return known
        try:
            answer = await client.users_info(user=user_id, include_locale=True)
        except SlackApiError as exc:
            raise ProfileUnreadable() from exc
        user = answer.get("user") or {}
        email = _email_of(user)
        member = await self.store.save_member(
            team_id, user_id, email, slack_locale(user.get("locale"))
        )
        self._remember_locale(member)
        if member.email is None:
            raise NoEmail()
        return member

    def backend(self, member: SlackMember) -> BackendClient:
        assert member.email is not None
        return BackendClient(self.backend_http, act_as=member.email)

    async def offices(self, member: SlackMember, *, fresh: bool = False) -> list[OfficeInfo]:
        """The member's offices; NotAMember when there is none.

        A member seen with offices in the last minute is not asked about again (one
        back-end call per Slack command otherwise); an empty answer is never kept, so
        someone just invited is recognised at once. ``fresh`` asks the back end always,
        for what is shown (names, roles).
        """
        email = member.email or ""
        now = self.store.clock()
        cached = self._offices.get(email)
        if not fresh and cached is not None and now - cached[0] < OFFICES_FRESH_FOR:
            return cached[1]
        offices = await self.backend(member).offices()
        if not offices:
            self._offices.pop(email, None)
            raise NotAMember(email)
        if len(self._offices) >= CACHED_MAX:
            for stale in sorted(self._offices, key=lambda key: self._offices[key][0])[
                : CACHED_MAX // 2
            ]:
                del self._offices[stale]
        self._offices[email] = (now, offices)
        return offices

    async def may_talk(self, member: SlackMember) -> None:
        """A member of an office, or someone invited to one (the assistant shows the
        invitation so they can join); NotAMember otherwise."""
        try:
            await self.offices(member)
        except NotAMember:
            if not await self.backend(member).invitations():
                raise

    async def dm_channel(self, client: AsyncWebClient, member: SlackMember) -> str:
        if member.dm_channel_id:
            return member.dm_channel_id
        opened = await client.conversations_open(users=member.user_id)
        channel = str((opened.get("channel") or {})["id"])
        await self.store.set_dm(member.team_id, member.user_id, channel)
        return channel


def _email_of(user: dict[str, Any]) -> str | None:
    """The Slack user's email in renkei's compared form; None when missing or no address."""
    try:
        return identity.normalize_email(str((user.get("profile") or {}).get("email") or ""))
    except identity.InvalidIdentity:
        return None
