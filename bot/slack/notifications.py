"""Sync status messages in each office's Slack channel, and the support handoff queue.

The back end's signed webhooks (verified in ``bot.backend_events``) are handed here.
Each becomes rows of ``slack_notifications``, unique per (event id, channel): a
webhook delivered twice queues one message. A sender loop in every process claims
due rows and posts them; a message Slack refuses or rate-limits is retried with
backoff (``Retry-After`` when Slack gives one), never lost, never posted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import tables as t
from bot.catalog import has
from bot.conversations import Conversations, rendered
from bot.slack import blocks as kit
from bot.slack.errors import NoWorkspaceToken
from bot.slack.listeners import NEW_CONVERSATION
from bot.slack.oauth_stores import SqlInstallationStore
from bot.slack.store import Notification, SlackStore
from statemachine.engine import ConversationNotFound
from statemachine.store import ConversationStore, Handoff

log = logging.getLogger(__name__)

CHANNEL_LOCALE = "ja"
"""The language of every message in an office channel, and of the support channel.

A channel is shared by people who may each have chosen another language, and an
office records no language of its own: channel messages are in the catalogs' first
language, Japanese, the language of the issuers' own notices. DM replies follow
each person's Slack locale instead.
"""
MAX_ATTEMPTS = 12
POLL_SECONDS = 2.0
TRANSCRIPT_LINES = 30
# Sync errors that also record a link event (needs re-auth, revoked) in the same sync.
LINK_ERRORS = frozenset({"reauth_required", "consent_revoked"})


def backoff_seconds(attempts: int) -> float:
    """1 s, 2 s, 4 s … capped at ten minutes."""
    return float(min(2 ** max(attempts - 1, 0), 600))


def _reason(error: str, locale: str) -> str:
    """Why a sync failed, in words; an error code the catalog does not know is shown as is."""
    key = f"slack.notify.reason.{error}"
    return kit.words(key, locale) if has(key) else kit.escape(error)


def _about_account(flow: str, account_id: str | None) -> list[str]:
    """Start ``flow`` and pick the notice's account, so the person lands on it at once."""
    return [flow, f"pick:{account_id}"] if account_id else [flow]


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None


class WorkspaceClients:
    """A Web API client for a workspace: the one bot token, or the installation's."""

    def __init__(
        self,
        base_url: str,
        bot_token: str | None,
        installations: SqlInstallationStore | None,
    ) -> None:
        self.base_url = base_url
        self.bot_token = bot_token
        self.installations = installations

    def _client(self, token: str) -> AsyncWebClient:
        # No retry handlers here: the outbox retries, so a retry survives a restart.
        return AsyncWebClient(token=token, base_url=self.base_url, retry_handlers=[])

    async def for_team(self, team_id: str | None) -> AsyncWebClient:
        if self.bot_token is not None:
            return self._client(self.bot_token)
        if self.installations is not None:
            bot = await self.installations.async_find_bot(enterprise_id=None, team_id=team_id)
            if bot is not None:
                return self._client(bot.bot_token)
        raise NoWorkspaceToken(team_id or "")


class Notifier:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: SlackStore,
        conversations: Conversations,
        handoffs: ConversationStore,
        clients: WorkspaceClients,
        *,
        support_channel: str | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.conversations = conversations
        self.handoffs = handoffs
        self.clients = clients
        self.support_channel = support_channel
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ events in
    async def on_backend_event(self, event: Mapping[str, Any], advanced: list[str]) -> None:
        """Queue what the event means for Slack: new replies in DMs, a notice in the office."""
        event_id = str(event.get("id") or "")
        if not event_id:
            return
        for conversation_id in advanced:
            await self._queue_replies(event_id, conversation_id)
        office_id = event.get("office_id")
        channel = await self.store.office_channel(str(office_id)) if office_id else None
        if channel is not None:
            notice = await self.office_notice(event)
            if notice is not None:
                key, text, blocks = notice
                await self.store.enqueue(key, channel.team_id, channel.channel_id, text, blocks)
        self._wake.set()

    async def _queue_replies(self, event_id: str, conversation_id: str) -> None:
        """An event moved a Slack member's conversation on: what it says goes to their DM."""
        members = [
            m for m in await self.store.members_of_conversation(conversation_id) if m.dm_channel_id
        ]
        if not members:
            return
        try:
            record = await self.conversations.get(conversation_id)
        except ConversationNotFound:
            return
        conversation = rendered(record)
        blocks = kit.conversation_blocks(conversation)
        for member in members:
            assert member.dm_channel_id is not None
            await self.store.enqueue(
                f"{event_id}:{conversation_id}",
                member.team_id,
                member.dm_channel_id,
                kit.fallback_text(conversation),
                blocks,
            )

    async def _names(self, office_id: str | None, account_id: str | None) -> dict[str, str]:
        names = {"office": "", "account": "", "issuer": "", "sync_method": ""}
        async with self.sessions() as session:
            if office_id:
                office = await session.scalar(
                    select(t.offices.c.name).where(t.offices.c.id == office_id)
                )
                names["office"] = str(office or office_id)
            if account_id:
                row = (
                    await session.execute(
                        select(
                            t.accounts.c.name, t.accounts.c.issuer, t.accounts.c.sync_method
                        ).where(t.accounts.c.id == account_id)
                    )
                ).first()
                if row is not None:
                    names["account"] = str(row.name)
                    names["issuer"] = str(getattr(row.issuer, "value", row.issuer))
                    names["sync_method"] = str(getattr(row.sync_method, "value", row.sync_method))
        return names

    async def office_notice(
        self, event: Mapping[str, Any]
    ) -> tuple[str, str, list[kit.Block]] | None:
        """(dedup key, text, blocks) of the office channel's message, or None to stay quiet."""
        kind = str(event.get("type") or "")
        data: Mapping[str, Any] = event.get("data") or {}
        office_id = str(event.get("office_id") or "")
        account_id = str(event.get("account_id") or "") or None
        names = await self._names(office_id, account_id)
        locale = CHANNEL_LOCALE
        params = {k: kit.escape(names[k]) for k in ("office", "account")}
        key = str(event["id"])
        # (label key, the choices a click plays: the flow, then its first answers)
        button: tuple[str, list[str]] | None = None
        if kind == "sync.completed":
            added = int(data.get("added") or 0)
            if added > 0:
                lines = [kit.words("slack.notify.sync_completed", locale, added=added, **params)]
            elif names["issuer"] == "jcb" and names["sync_method"] == "api":
                # R9: JCB's API lags behind MyJCB; said once a day per account, not per sync.
                key = f"r9:{account_id}:{dt.date.fromtimestamp(int(event.get('created') or 0))}"
                lines = [kit.words("slack.notify.jcb_delayed", locale, **params)]
            else:
                return None  # a routine sync with nothing new: no noise in the channel
        elif kind == "sync.failed":
            error = str(data.get("error_code") or "unknown")
            if error in LINK_ERRORS:
                return None  # the same sync's link notice says it, with the button that fixes it
            advice = (
                "slack.notify.sync_failed_login"
                if error == "legacy_login_failed"
                else "slack.notify.sync_failed_retry"
            )
            lines = [
                kit.words(
                    "slack.notify.sync_failed", locale, error=_reason(error, locale), **params
                ),
                kit.words(advice, locale),
            ]
            button = ("slack.notify.status_button", _about_account("status", account_id))
        elif kind in ("link.needs_reauth", "link.revoked"):
            notice = (
                "slack.notify.needs_reauth"
                if kind == "link.needs_reauth"
                else "slack.notify.link_revoked"
            )
            lines = [kit.words(notice, locale, **params)]
            steps = _about_account("status", account_id)
            if account_id and names["sync_method"] == "api":
                steps.append("reauth")  # straight to the issuer's consent page for this account
            button = ("slack.notify.reauth_button", steps)
        elif kind == "office.api_released":
            issuer = kit.words(f"slack.issuer.{data.get('issuer') or 'amex'}", locale)
            lines = [kit.words("slack.notify.api_released", locale, issuer=issuer, **params)]
            button = ("slack.notify.switch_button", ["switch_to_api"])  # R4
        elif kind == "card.changed":
            old_card = kit.escape(str(data.get("old_card") or ""))
            lines = [kit.words("slack.notify.card_changed", locale, old_card=old_card, **params)]
            # R7: the button opens the three ways of keeping the old card's statements.
            button = (
                "slack.notify.card_change_button",
                _about_account("jcb_card_change", account_id),
            )
        else:
            return None
        text = "\n".join(lines)
        blocks = [kit.section(text)]
        if button is not None:
            label, choices = button
            # Whoever clicks gets a conversation of their own, started in this office.
            value = kit.choice_value(f"{NEW_CONVERSATION}:{office_id}", kit.steps(choices))
            blocks.extend(
                kit.actions([kit.button(f"{kit.CHOICE_ACTION}-0", kit.words(label, locale), value)])
            )
        return key, text, blocks

    # ------------------------------------------------------------------ handoffs
    async def route_handoffs(self) -> int:
        """Each handoff of the flows, once, to the support channel."""
        if not self.support_channel:
            return 0
        team_id, _, channel = self.support_channel.rpartition(":")
        routed = 0
        for handoff in await self.handoffs.unrouted_handoffs():
            text, blocks = await self.handoff_message(handoff)
            await self.store.enqueue(
                f"handoff:{handoff.id}", team_id or None, channel, text, blocks
            )
            await self.handoffs.mark_handoff_routed(handoff.id, self.store.clock())
            routed += 1
        if routed:
            self._wake.set()
        return routed

    async def handoff_message(self, handoff: Handoff) -> tuple[str, list[kit.Block]]:
        locale = CHANNEL_LOCALE
        names = await self._names(handoff.office_id, None)
        head = kit.words(
            "slack.notify.handoff",
            locale,
            user=kit.escape(handoff.user),
            office=kit.escape(names["office"] or "-"),
        )
        state = handoff.account_state
        account = (
            kit.words("slack.notify.handoff_account", locale, account=kit.escape(_compact(state)))
            if state
            else kit.words("slack.notify.handoff_none", locale)
        )
        # The transcript is data for support staff: shown as recorded, not translated.
        lines = [_compact(entry) for entry in handoff.transcript[-TRANSCRIPT_LINES:]]
        transcript = "```" + kit.escape("\n".join(lines))[:2800] + "```"
        blocks = [
            kit.section(head),
            kit.section(account),
            kit.section(kit.words("slack.notify.handoff_transcript", locale)),
            kit.section(transcript),
        ]
        return head, blocks

    # ------------------------------------------------------------------ sending
    async def deliver_due(self) -> int:
        sent = 0
        for notification in await self.store.claim_due():
            if await self._deliver(notification):
                sent += 1
        return sent

    async def _deliver(self, notification: Notification) -> bool:
        attempts = notification.attempts + 1
        try:
            client = await self.clients.for_team(notification.team_id)
            answer = await client.chat_postMessage(
                channel=notification.channel_id, text=notification.text, blocks=notification.blocks
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            delay = backoff_seconds(attempts)
            if exc.response.status_code == 429 or error == "ratelimited":
                after = _header(exc.response.headers, "Retry-After")
                delay = float(after) if after and after.isdigit() else delay
            return await self._retry_or_fail(notification, attempts, delay, error)
        except (aiohttp.ClientError, TimeoutError, NoWorkspaceToken) as exc:
            error = type(exc).__name__
            return await self._retry_or_fail(
                notification, attempts, backoff_seconds(attempts), error
            )
        await self.store.mark_sent(notification.id, str(answer.get("ts") or "") or None)
        return True

    async def _retry_or_fail(
        self, notification: Notification, attempts: int, delay: float, error: str
    ) -> bool:
        if attempts >= MAX_ATTEMPTS:
            log.error("Slack message %s given up: %s", notification.event_id, error)
            await self.store.mark_failed(notification.id, error)
        else:
            log.warning(
                "Slack message %s not sent (%s); retry in %.0f s",
                notification.event_id,
                error,
                delay,
            )
            await self.store.mark_retry(notification.id, delay, error)
        return False

    async def run_once(self) -> None:
        await self.route_handoffs()
        await self.deliver_due()

    async def _loop(self) -> None:
        cleaned = self.store.clock()
        while True:
            try:
                await self.run_once()
                if self.store.clock() - cleaned > dt.timedelta(hours=1):
                    cleaned = self.store.clock()
                    await self.store.forget_seen_before(cleaned - dt.timedelta(days=1))
            except Exception:
                # One bad round (database restarting…) must not end the sender for good.
                log.exception("Slack notification round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="slack-notifications")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
