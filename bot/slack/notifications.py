"""Sync status messages in each office's Slack channel, and the support handoff queue.

The back end's signed webhooks (verified in ``bot.backend_events``) are handed here.
Each becomes rows of ``slack_notifications``, unique per (event id, channel): a
webhook delivered twice queues one message. Each row comes with a ``slack_notice``
job, run by whichever runner renkei has (``send``): one channel's messages are posted
in order, and a message Slack refuses or rate-limits is tried again with backoff
(``Retry-After`` when Slack gives one), never lost. A worker killed between Slack's
answer and the row's update posts that one message again when its job runs again.

Support handoffs are passed on by a ``slack_handoffs`` job (``route``), queued when a
handoff or one of its messages is written, and by the minute's upkeep for any left
over (a process that died between the two): the handoff tables are their own outbox.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from backend.domain.vocabulary import EventType
from bot.conversations import Conversations, rendered
from bot.offers import offer_kind, offer_steps
from bot.slack import blocks as kit
from bot.slack.errors import NoWorkspaceToken
from bot.slack.listeners import HANDOFF_EVENT, NEW_CONVERSATION
from bot.slack.ports import Directory, Notification, Posting, SlackMember, SlackStore
from i18n import formats, has
from statemachine import handoff as desk
from statemachine.engine import ConversationNotFound
from statemachine.handoff import HandoffMessage, HandoffStore, MessageKind
from statemachine.store import Handoff

log = logging.getLogger(__name__)

CHANNEL_LOCALE = "ja"
"""The language of every message in an office channel, and of the support channel.

A channel is shared by people who may each have chosen another language, and an
office records no language of its own: channel messages are in the catalogs' first
language, Japanese, the language of the issuers' own notices. DM replies follow
each person's Slack locale instead.
"""
MAX_ATTEMPTS = 12
# Slack's errors that no retry mends: the notice stops and the channel's admins are told.
PERMANENT_CHANNEL_ERRORS = frozenset({"channel_not_found", "is_archived", "not_in_channel"})
SEEN_KEPT = dt.timedelta(days=1)  # Slack retries a request within minutes, not days
# A channel's job hands over to a new one after this many messages or seconds, well
# inside the in-process runner's lease of a running job.
ROUND_MESSAGES = 100
ROUND_SECONDS = 60.0
# A message waiting this long past its time has lost its job (the upkeep queues one).
OVERDUE = dt.timedelta(minutes=2)
# Slack's errors that mean Slack itself is struggling: retried, like HTTP 5xx.
SLACK_OUTAGE_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
TRANSCRIPT_LINES = 30
# Sync errors that also record a link event (needs re-auth, revoked) in the same sync.
LINK_ERRORS = frozenset({"reauth_required", "consent_revoked"})
# Events each member known in Slack also hears in their DM, not only the office channel.
DIRECT_NOTICES = frozenset({EventType.CONSENT_EXPIRING})


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


def card_offer_steps(data: Mapping[str, Any]) -> list[str]:
    """The flow a discovered card's offer starts, then its answers that choose that card."""
    return offer_steps(offer_kind(data), data)


def _day_in_japan(value: object, locale: str) -> str:
    """An event's ISO time as the day it is in Japan, where the issuers and offices are."""
    try:
        return formats.date(str(value), locale)
    except ValueError:
        return ""


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
        installations: AsyncInstallationStore | None,
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
        store: SlackStore,
        directory: Directory,
        conversations: Conversations,
        handoffs: HandoffStore,
        clients: WorkspaceClients,
        *,
        public_url: str,
        support_channel: str | None = None,
        stop_link_urls: Mapping[str, str] | None = None,
    ) -> None:
        self.public_url = public_url
        self.stop_link_urls = dict(stop_link_urls or {})
        self.store = store
        self.directory = directory
        self.conversations = conversations
        self.handoffs = handoffs
        self.clients = clients
        self.support_channel = support_channel

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
        if office_id and event.get("type") in DIRECT_NOTICES:
            await self._tell_members(event, str(office_id))

    async def _tell_members(self, event: Mapping[str, Any], office_id: str) -> None:
        """A consent near its end needs one person to act before a day: besides the
        office channel (which may be unset or unread), each member renkei knows in Slack
        hears it in their own DM, in their own language, with the button that renews."""
        for email in await self.directory.member_emails(office_id):
            for member in await self.store.members_by_email(email):
                try:
                    client = await self.clients.for_team(member.team_id)
                except NoWorkspaceToken:
                    continue  # the workspace uninstalled renkei
                dm = await self._dm_of(client, member)
                notice = await self.office_notice(event, member.locale)
                if dm is None or notice is None:
                    continue
                key, text, blocks = notice
                await self.store.enqueue(
                    f"{key}:dm:{member.team_id}:{member.user_id}", member.team_id, dm, text, blocks
                )

    async def _dm_of(self, client: AsyncWebClient, member: SlackMember) -> str | None:
        """The member's DM with renkei, opened (and kept) when there is none yet."""
        if member.dm_channel_id is not None:
            return member.dm_channel_id
        try:
            opened = await client.conversations_open(users=member.user_id)
        except SlackApiError as exc:
            log.warning("no DM with a member: %s", exc.response.get("error"))
            return None
        dm = str((opened.get("channel") or {})["id"])
        await self.store.set_dm(member.team_id, member.user_id, dm)
        return dm

    async def _queue_replies(self, event_id: str, conversation_id: str) -> None:
        """An event moved a Slack member's conversation on: what it says goes to their DM.

        The person may have started another conversation meanwhile (a consent given
        after ``/renkei status``): the event's conversation is still theirs, found by its
        owner's email, and becomes their current one again, since its message is the
        newest in the DM and the next thing they type or click answers it."""
        try:
            record = await self.conversations.get(conversation_id)
        except ConversationNotFound:
            return
        members = [
            m for m in await self.store.members_of_conversation(conversation_id) if m.dm_channel_id
        ]
        if not members and record.user:
            members = [m for m in await self.store.members_by_email(record.user) if m.dm_channel_id]
            for member in members:
                await self.store.set_conversation(member.team_id, member.user_id, conversation_id)
        if not members:
            return
        conversation = rendered(record)
        blocks = kit.conversation_blocks(conversation, base_url=self.public_url)
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
        if office_id:
            names["office"] = await self.directory.office_name(office_id) or office_id
        if account_id:
            account = await self.directory.account_names(account_id)
            if account is not None:
                names["account"] = account.name
                names["issuer"] = account.issuer
                names["sync_method"] = account.sync_method
        return names

    async def office_notice(
        self, event: Mapping[str, Any], locale: str = CHANNEL_LOCALE
    ) -> tuple[str, str, list[kit.Block]] | None:
        """(dedup key, text, blocks) of the office channel's message, or None to stay quiet."""
        kind = str(event.get("type") or "")
        data: Mapping[str, Any] = event.get("data") or {}
        office_id = str(event.get("office_id") or "")
        account_id = str(event.get("account_id") or "") or None
        names = await self._names(office_id, account_id)
        params = {k: kit.escape(names[k]) for k in ("office", "account")}
        key = str(event["id"])
        # (label key, the choices a click plays: the flow, then its first answers)
        button: tuple[str, list[str]] | None = None
        if kind == EventType.SYNC_COMPLETED:
            added = int(data.get("added") or 0)
            if added > 0:
                lines = [kit.words("slack.notify.sync_completed", locale, added=added, **params)]
            elif names["issuer"] == "jcb" and names["sync_method"] == "api":
                # R9: JCB's API lags behind MyJCB; said once a day per account, not per sync.
                key = f"r9:{account_id}:{dt.date.fromtimestamp(int(event.get('created') or 0))}"
                lines = [kit.words("slack.notify.jcb_delayed", locale, **params)]
            else:
                return None  # a routine sync with nothing new: no noise in the channel
        elif kind == EventType.SYNC_FAILED:
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
        elif kind in (
            EventType.LINK_NEEDS_REAUTH,
            EventType.LINK_REVOKED,
            EventType.CONSENT_EXPIRING,
        ):
            notice = {
                EventType.LINK_NEEDS_REAUTH: "slack.notify.needs_reauth",
                EventType.CONSENT_EXPIRING: "slack.notify.consent_expiring",
            }.get(EventType(kind), "slack.notify.link_revoked")
            if data.get("reason") == "expired":
                notice = "slack.notify.link_expired"  # the consent reached its end
            site = ""
            if kind == EventType.LINK_NEEDS_REAUTH and data.get("stop_at_member_site"):
                # R10/R16: the old grant still holds the card; the consent page would grey
                # it out, so the stop on the member site is said before the button.
                notice = "slack.notify.needs_reauth_stop_first"
                site = self._member_site(names["issuer"], locale)
            ends = _day_in_japan(data.get("expires_at"), locale)
            days = data.get("days_left") or 0
            lines = [kit.words(notice, locale, date=ends, days=days, site=site, **params)]
            steps = _about_account("status", account_id)
            if account_id and names["sync_method"] == "api":
                steps.append("reauth")  # straight to the issuer's consent page for this account
            label = "renew_button" if kind == EventType.CONSENT_EXPIRING else "reauth_button"
            button = (f"slack.notify.{label}", steps)
        elif kind == EventType.LINK_REPAIRED:
            lines = [kit.words("slack.notify.link_repaired", locale, **params)]
        elif kind == EventType.API_RELEASED:
            issuer = kit.words(f"words.issuer.{data.get('issuer') or 'amex'}", locale)
            lines = [kit.words("slack.notify.api_released", locale, issuer=issuer, **params)]
            button = ("slack.notify.switch_button", ["switch_to_api"])  # R4
        elif kind == EventType.CARD_CHANGED:
            old_card = kit.escape(str(data.get("old_card") or ""))
            lines = [kit.words("slack.notify.card_changed", locale, old_card=old_card, **params)]
            # R7: the button opens the three ways of keeping the old card's statements.
            button = (
                "slack.notify.card_change_button",
                _about_account("jcb_card_change", account_id),
            )
        elif kind == EventType.CARD_DISCOVERED:
            # R15: a card that appeared under the ID is offered; nothing is set up for it.
            offer = "supplementary" if data.get("offer") == "supplementary_card" else "register"
            card = {
                "card": kit.escape(str(data.get("masked_number") or "")),
                "holder": kit.escape(str(data.get("holder_name") or "")),
            }
            if data.get("statements_in_account"):
                offer = "covered"  # R9: the JCB API link already brings its statements
            lines = [kit.words(f"slack.notify.card_discovered_{offer}", locale, **card, **params)]
            if offer != "covered":
                button = (f"slack.notify.{offer}_button", card_offer_steps(data))
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

    def _member_site(self, issuer: str, locale: str) -> str:
        """The issuer's member site, linked to the page where a link is stopped."""
        label = kit.words("slack.notify.member_site", locale)
        url = self.stop_link_urls.get(issuer)
        return f"<{url}|{label}>" if url else label

    # ------------------------------------------------------------------ handoffs
    async def route(self, payload: Mapping[str, Any]) -> None:
        """The ``slack_handoffs`` job: new handoffs, then what was said in them."""
        await self.route_handoffs()
        await self.route_handoff_messages()

    async def upkeep(self) -> None:
        """Every minute: forget old request keys; queue the job of any channel whose
        messages are overdue (its job gave up on an error, was cancelled, or ended
        just before a message of a transaction still open was committed), and the
        routing of any handoff message written by a process that died before it queued
        the routing itself."""
        now = self.store.clock()
        await self.store.forget_seen_before(now - SEEN_KEPT)
        for channel_id in await self.store.overdue_channels(now - OVERDUE):
            log.warning("Slack messages to %s were overdue: queued again", channel_id)
            await self.store.queue_channel(channel_id)
        left = bool(await self.handoffs.unrouted_handoff_messages(limit=1))
        if self.support_channel:
            left = left or bool(await self.handoffs.unrouted_handoffs(limit=1))
        if left:
            await self.store.queue_handoff_routing()

    async def route_handoffs(self) -> int:
        """Each handoff of the flows, once, to the support channel."""
        if not self.support_channel:
            return 0
        team_id, _, channel = self.support_channel.rpartition(":")
        routed = 0
        for handoff in await self.handoffs.unrouted_handoffs():
            text, blocks = await self.handoff_message(handoff)
            await self.store.enqueue(
                f"{HANDOFF_EVENT}{handoff.id}", team_id or None, channel, text, blocks
            )
            await self.handoffs.mark_handoff_routed(handoff.id, self.store.clock())
            routed += 1
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
        resolve = kit.words("slack.notify.handoff_resolve_button", locale)
        blocks = [
            kit.section(head),
            kit.section(account),
            kit.section(kit.words("slack.notify.handoff_transcript", locale)),
            kit.section(transcript),
            kit.context(kit.words("slack.notify.handoff_reply_hint", locale)),
            *kit.actions([kit.button(kit.RESOLVE_ACTION, resolve, handoff.id)]),
        ]
        return head, blocks

    async def route_handoff_messages(self) -> int:
        """What was said in a handoff since it started, each once, in order: the person's
        words into the support channel's thread, support's answers and the end into the
        person's DM (when their conversation lives in Slack). A handoff whose thread is
        not posted yet waits: its first message, posted or refused, queues this again
        (``send``)."""
        waiting: set[str] = set()  # handoffs whose thread is not posted yet: keep the order
        routed = 0
        for message in await self.handoffs.unrouted_handoff_messages():
            if message.handoff_id in waiting:
                continue
            if not await self._route_handoff_message(message):
                waiting.add(message.handoff_id)
                continue
            await self.handoffs.mark_handoff_message_routed(message.id, self.store.clock())
            routed += 1
        return routed

    async def _support_thread(self, handoff_id: str) -> tuple[str | None, str, Posting | None]:
        """(team, channel, first message) of a handoff in the support channel: its
        ``message_ts`` is the thread, once it is posted."""
        assert self.support_channel
        team_id, _, channel = self.support_channel.rpartition(":")
        first = await self.store.posting(f"{HANDOFF_EVENT}{handoff_id}", channel)
        return team_id or None, channel, first

    async def _route_handoff_message(self, message: HandoffMessage) -> bool:
        """Queue one handoff message where it goes; False to try again later (its
        thread is not posted yet)."""
        locale = CHANNEL_LOCALE
        key = f"handoff-message:{message.id}"
        in_thread: str | None = None
        if message.kind == MessageKind.PERSON:
            in_thread = kit.words(
                "slack.notify.handoff_person",
                locale,
                user=kit.escape(message.author),
                text=kit.escape(message.text),
            )
        elif message.kind == MessageKind.SUPPORT and message.via != "slack":
            in_thread = kit.words(
                "slack.notify.handoff_from_page", locale, text=kit.escape(message.text)
            )
        elif message.kind == MessageKind.RESOLVED:
            by_person = message.via == "chat"
            in_thread = (
                kit.words("slack.notify.handoff_resolved_by_person", locale)
                if by_person
                else kit.words(
                    "slack.notify.handoff_resolved", locale, by=_who(message.author, message.via)
                )
            )
        if in_thread is not None and self.support_channel:
            team_id, channel, first = await self._support_thread(message.handoff_id)
            if first is not None and first.message_ts is not None:
                await self.store.enqueue(
                    key,
                    team_id,
                    channel,
                    in_thread,
                    [kit.section(in_thread)],
                    thread_ts=first.message_ts,
                )
            elif await self._thread_never_comes(message.handoff_id, first):
                # Waiting for a thread that never comes would hold this message (and the
                # person's answers behind it) for ever. The support page still shows it.
                log.warning(
                    "Handoff %s has no support thread: message %s stays on the support page",
                    message.handoff_id,
                    message.id,
                )
            else:
                return False  # its thread is not posted yet
        if message.kind == MessageKind.SUPPORT:
            await self._tell_person(message, key)
        elif message.kind == MessageKind.RESOLVED and message.via != "chat":
            # Support ended it: the person hears that the assistant is back, where it was.
            await self._tell_person_resumed(message, key)
        return True

    async def _thread_never_comes(self, handoff_id: str, first: Posting | None) -> bool:
        if first is not None:
            # Slack refused the first message for good, or posted it without a ``ts``.
            return first.status in {"failed", "sent"}
        # Routed, yet no first message in the support channel: it was pruned, or the
        # support channel changed since.
        handoff = await self.handoffs.handoff(handoff_id)
        return handoff is None or handoff.routed_at is not None

    async def _tell_person_resumed(self, message: HandoffMessage, key: str) -> None:
        try:
            record = await self.conversations.get(message.conversation_id)
        except ConversationNotFound:
            return
        conversation = rendered(record)
        blocks = kit.conversation_blocks(conversation, base_url=self.public_url)
        for member in await self.store.members_of_conversation(message.conversation_id):
            if member.dm_channel_id is not None:
                await self.store.enqueue(
                    key,
                    member.team_id,
                    member.dm_channel_id,
                    kit.fallback_text(conversation),
                    blocks,
                )

    async def _tell_person(self, message: HandoffMessage, key: str) -> None:
        """Support's answer in the DM of the person whose conversation it is, with the
        way back to the assistant."""
        for member in await self.store.members_of_conversation(message.conversation_id):
            if member.dm_channel_id is None:
                continue
            text = kit.words("handoff.support_said", member.locale, text=message.text)
            back = kit.button(
                f"{kit.CHOICE_ACTION}-0",
                kit.words("nav.handoff_end", member.locale),
                kit.choice_value(message.conversation_id, desk.END),
            )
            await self.store.enqueue(
                key,
                member.team_id,
                member.dm_channel_id,
                text,
                [kit.section(kit.escape(text)), *kit.actions([back])],
            )

    # ------------------------------------------------------------------ sending
    async def send(self, payload: Mapping[str, Any]) -> None:
        """The ``slack_notice`` job of a channel: post its waiting messages, the oldest
        first, until none is left. A message Slack asked to wait (rate limit, outage)
        stops the round, the later ones staying behind it, and the job runs again when
        it may be tried (``NoticeNotSent``). A long round hands over to a new job of the
        channel: a job is never held past its lease."""
        channel_id = str(payload["channel_id"])
        started = time.monotonic()
        posted = 0
        while waiting := await self.store.waiting_messages(channel_id):
            for notification in waiting:
                wait = _seconds_until(notification.due_at, self.store.clock())
                if wait > 0:
                    raise NoticeNotSent("waiting", wait)
                if await self._deliver(notification):
                    posted += 1
                if notification.event_id.startswith(HANDOFF_EVENT):
                    # The handoff's thread exists now, or never will: what was said in it
                    # follows, or goes on without it.
                    await self.store.queue_handoff_routing()
                if posted >= ROUND_MESSAGES or time.monotonic() - started > ROUND_SECONDS:
                    await self.store.queue_channel(channel_id)
                    return

    async def _deliver(self, notification: Notification) -> bool:
        attempts = notification.attempts + 1
        try:
            client = await self.clients.for_team(notification.team_id)
            answer = await client.chat_postMessage(
                channel=notification.channel_id,
                text=notification.text,
                blocks=notification.blocks,
                thread_ts=notification.thread_ts,
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            delay = backoff_seconds(attempts)
            status = exc.response.status_code
            if error in PERMANENT_CHANNEL_ERRORS:
                log.error("Slack message %s cannot be posted: %s", notification.event_id, error)
                await self.store.mark_failed(notification.id, error)
                await self._tell_channel_admins(client, notification, error)
                return False
            if status == 429 or error == "ratelimited":
                after = _header(exc.response.headers, "Retry-After")
                delay = float(after) if after and after.isdigit() else delay
            elif status < 500 and error not in SLACK_OUTAGE_ERRORS:
                # This message's own fault (its blocks, its size) or a workspace that
                # revoked renkei: no retry mends it, and the channel's later messages
                # must not wait behind it.
                log.error("Slack message %s refused: %s", notification.event_id, error)
                await self.store.mark_failed(notification.id, error)
                return False
            return await self._retry_or_fail(notification, attempts, delay, error)
        except NoWorkspaceToken:
            log.error("Slack message %s: the workspace uninstalled renkei", notification.event_id)
            await self.store.mark_failed(notification.id, "no_workspace_token")
            return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = type(exc).__name__
            return await self._retry_or_fail(
                notification, attempts, backoff_seconds(attempts), error
            )
        await self.store.mark_sent(notification.id, str(answer.get("ts") or "") or None)
        return True

    async def _tell_channel_admins(
        self, client: AsyncWebClient, notification: Notification, error: str
    ) -> None:
        """An office channel that lost renkei: whoever set it hears it in their DM, in
        their own language, once a day per channel: every notice meets the same broken
        channel, and a DM for each would bury the one that says what to do."""
        if notification.team_id is None:
            return
        for admin in await self.store.channel_setters(
            notification.team_id, notification.channel_id
        ):
            dm = await self._dm_of(client, admin)
            if dm is None:
                continue
            reason = kit.words(f"slack.channel.reason.{error}", admin.locale)
            text = kit.words(
                "slack.channel.broken", admin.locale, channel=notification.channel_id, reason=reason
            )
            day = self.store.clock().date().isoformat()
            await self.store.enqueue(
                f"unusable:{notification.channel_id}:{day}",
                admin.team_id,
                dm,
                text,
                [kit.section(text)],
            )

    async def _retry_or_fail(
        self, notification: Notification, attempts: int, delay: float, error: str
    ) -> bool:
        if attempts >= MAX_ATTEMPTS:
            log.error("Slack message %s given up: %s", notification.event_id, error)
            await self.store.mark_failed(notification.id, error)
            return False
        log.warning(
            "Slack message %s not sent (%s); retry in %.0f s", notification.event_id, error, delay
        )
        await self.store.mark_retry(notification.id, delay, error)
        raise NoticeNotSent(error, delay)


class NoticeNotSent(Exception):
    """Slack did not take a message (yet): its job runs again in ``retry_in`` seconds,
    and the channel's later messages wait behind it."""

    def __init__(self, error: str, retry_in: float) -> None:
        super().__init__(error)
        self.retry_in = retry_in  # the message counts its own attempts (MAX_ATTEMPTS)


def _seconds_until(due: dt.datetime | None, now: dt.datetime) -> float:
    if due is None:
        return 0.0
    if due.tzinfo is None:  # as SQLite gives it back: written in UTC
        due = due.replace(tzinfo=dt.UTC)
    return (due - now).total_seconds()


def _who(author: str, via: str) -> str:
    """Who ended a handoff, as the support channel shows it (a Slack user as a mention)."""
    if via == "slack" and author.startswith(("U", "W")) and author.isalnum():
        return f"<@{author}>"
    return kit.escape(author)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
