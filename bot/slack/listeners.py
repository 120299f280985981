"""What renkei does with each Slack request: slash command, buttons, modals, App Home, DMs.

Every listener acks at once (Slack gives up after 3 s). The back-end work the request
asks for is not done in the process that acks: the request becomes a job, committed
before the ack leaves, and a worker carries it out by running the same listener again
on the stored request (``replaying``), as bolt's lazy listeners do on FaaS. A web
process that dies after an ack loses no reply, and its loop keeps only the acks.
Replies go to the person's DM with the app, where their conversation lives.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversations import Conversations, choice_label, rendered
from bot.slack import blocks as kit
from bot.slack.errors import MemberUnknown
from bot.slack.files import download
from bot.slack.members import Members
from bot.slack.ports import DeferredRequests, SlackMember, SlackRequest, SlackStore
from statemachine.engine import (
    INVITATION,
    MENU,
    ConversationConflict,
    ConversationNotFound,
    Input,
)
from statemachine.flow import NAVIGATION
from statemachine.flows import FLOW_COMMANDS
from statemachine.offices import office_choices
from statemachine.port import BackendRefusal, BackendUnavailable
from statemachine.store import ConversationRecord

log = logging.getLogger(__name__)

COMMAND = "/renkei"
REQUEST_KEY = "renkei_request_key"  # in bolt's per-request context
PERSON = "renkei_person"  # in bolt's per-request context: the Slack user, as a ``Person``
PAYLOAD = "renkei_payload"  # in bolt's per-request context: the request as bolt read it
# In bolt's per-request context: what the acking process did that a replay must reuse.
CARRIED = "renkei_carried"
NEW_CONVERSATION = "new"  # a button's conversation part: start one (notices in channels)
HANDOFF_EVENT = "handoff:"  # the event id of a handoff's message in the support channel
# Errors of views.open that mean the modal cannot be shown: say it in the DM instead.
TRIGGER_GONE = {"expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"}

# Slack's errors of a channel that takes no message from renkei, and the words for each.
CHANNEL_UNUSABLE = {
    "not_in_channel": "not_invited",
    "channel_not_found": "not_invited",  # a private channel the bot is not in looks absent
    "is_archived": "archived",
    "restricted_action": "restricted",
}

Next = Callable[[], Awaitable[BoltResponse]]
Work = Callable[[SlackMember], Awaitable[None]]
"""What a request does for the member behind it, after the ack."""


def request_key(body: dict[str, Any]) -> str | None:
    """What makes a Slack request unique: the event id, or the interaction's trigger."""
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    trigger = body.get("trigger_id")
    if trigger:
        kind = body.get("type") or body.get("command") or "command"
        return f"{kind}:{trigger}"
    for action in body.get("actions") or []:
        if action.get("action_ts"):
            return f"action:{body.get('user', {}).get('id')}:{action['action_ts']}"
    return None


class Person:
    """The Slack user behind one request, put in bolt's context by ``SlackFrontEnd.note``.

    The member is resolved at most once per request, and only when the work after the
    ack first asks for it: resolving reads the database and may ask Slack (users.info),
    neither of which an ack may wait for.
    """

    def __init__(
        self,
        members: Members,
        client: AsyncWebClient,
        team_id: str,
        user_id: str,
        respond: AsyncRespond | None = None,
    ) -> None:
        self.members = members
        self.client = client
        self.team_id = team_id
        self.user_id = user_id
        # The request's response_url (commands, buttons): the way to answer with no DM.
        self.respond = respond
        self._member: SlackMember | None = None

    async def locale(self) -> str:
        """The person's language as known without asking Slack (fit for before the ack)."""
        return await self.members.cached_locale(self.team_id, self.user_id)

    async def member(self) -> SlackMember:
        """The renkei member; MemberUnknown when the person is none."""
        if self._member is None:
            self._member = await self.members.resolve(self.client, self.team_id, self.user_id)
        return self._member


def person(context: AsyncBoltContext) -> Person:
    found: Person = context[PERSON]
    return found


class SlackFrontEnd:
    def __init__(
        self,
        conversations: Conversations,
        store: SlackStore,
        members: Members,
        *,
        public_url: str,
        deferred: DeferredRequests | None = None,
        replaying: bool = False,
        support_channel: str | None = None,
    ) -> None:
        self.conversations = conversations
        # "<team id>:<channel id>" (or the channel alone) where support answers handoffs.
        self.support_channel = support_channel
        self.public_url = public_url  # links in messages are made absolute against it
        self.store = store
        self.members = members
        # Where the work after an ack goes; None runs it in place (a front end on its own).
        self.deferred = deferred
        # A worker carrying out deferred requests: the work runs here, nothing is queued.
        self.replaying = replaying

    def register(self, app: AsyncApp) -> None:
        app.middleware(self.note)
        app.command(COMMAND)(self.on_command)
        app.action(re.compile(f"^{kit.CHOICE_ACTION}"))(self.on_choice)
        app.action(re.compile(f"^{kit.LINK_ACTION}"))(self.on_link)
        app.action(kit.FORM_ACTION)(self.on_form_button)
        app.action(re.compile(f"^{kit.CHANNEL_ACTION}"))(self.on_channel_button)
        app.action(kit.RESOLVE_ACTION)(self.on_resolve)
        app.view(kit.FORM_CALLBACK)(self.on_form_submit)
        app.view(kit.INFO_CALLBACK)(self.on_info_submit)
        app.event("app_home_opened")(self.on_home_opened)
        app.event("message")(self.on_message)
        app.event("app_mention")(self.on_mention)
        # Slack retries and in the end disables an app that answers 404: whatever renkei
        # does nothing with (a modal closed, a file shared in a channel, a button of an
        # older version, an event not acted on) is acked all the same. Registered last:
        # bolt takes the first listener that matches.
        app.view_closed(re.compile(".*"))(self.on_ignored)
        app.action(re.compile(".*"))(self.on_ignored)
        app.view(re.compile(".*"))(self.on_ignored)
        app.event(re.compile(".*"))(self.on_ignored_event)

    # ------------------------------------------------------------------ middleware
    async def note(
        self, req: AsyncBoltRequest, resp: BoltResponse, next: Next
    ) -> BoltResponse | None:
        """Who sent the request (a ``Person``, resolved later) and what makes it unique
        (for ``_after_ack`` to skip a retry's work). Nothing here waits on anything."""
        context = req.context
        context[REQUEST_KEY] = request_key(req.body)
        context[PAYLOAD] = req.body
        context.setdefault(CARRIED, {})
        context[PERSON] = Person(
            self.members,
            context.client,
            str(context.team_id or ""),
            str(context.user_id or ""),
            context.respond,
        )
        return await next()

    # ------------------------------------------------------------------ slash command
    async def on_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        word, _, rest = str(command.get("text") or "").strip().partition(" ")
        word = word.lower()
        locale = await person(context).locale()
        if word == "help":
            await ack(text=kit.words("slack.help", locale))
            return
        known = word in ("", "cancel", "offices", "channel") or word in FLOW_COMMANDS
        if not known:
            await ack(text=kit.words("slack.unknown_subcommand", locale, word=kit.snippet(word)))
            return
        channel_id = str(command.get("channel_id") or "")
        if word == "offices":
            await ack()
            # The modal opens at once (its trigger dies after 3 s); it is filled after.
            opened = await self._open_loading(context, client, str(command["trigger_id"]), locale)
            await self._after_ack(context, lambda member: self._offices(client, member, opened))
            return
        if word == "channel":
            await ack()
            await self._after_ack(
                context, lambda member: self._set_channel(client, member, channel_id, rest)
            )
            return
        if channel_id.startswith("D"):
            await ack()
        else:
            await ack(text=kit.words("slack.replied_in_dm", locale))
        await self._after_ack(context, lambda member: self._command(client, member, word))

    async def _command(self, client: AsyncWebClient, member: SlackMember, word: str) -> None:
        # Not a member anywhere nor invited: said clearly, nothing started.
        await self.members.may_talk(member)
        if word == "cancel" and member.conversation_id:
            record = await self._send(
                client, member, member.conversation_id, Input(choice="cancel")
            )
        else:
            record = await self._start(member)
            if word in FLOW_COMMANDS:
                record = await self._send(
                    client, member, record.id, Input(choice=FLOW_COMMANDS[word])
                )
        if record is not None:
            await self.post_conversation(client, member, record)

    # ------------------------------------------------------------------ buttons
    async def on_choice(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        await self._after_ack(context, lambda member: self._choice(client, member, body, action))

    async def _choice(
        self,
        client: AsyncWebClient,
        member: SlackMember,
        body: dict[str, Any],
        action: dict[str, Any],
    ) -> None:
        target, choice = kit.split_value(str(action.get("value") or ""))
        if target == NEW_CONVERSATION or target.startswith(f"{NEW_CONVERSATION}:"):
            # A notice's button in a shared channel: a fresh conversation for whoever clicks.
            office_id = target.partition(":")[2] or None
            await self.members.offices(member)
            sent: ConversationRecord | None = await self._start(member, office_id)
            # The flow, then its first answers (the notice's account): one message at the end.
            for step in kit.split_steps(choice):
                assert sent is not None
                sent = await self._send(client, member, sent.id, Input(choice=step))
                if sent is None:
                    return
            if sent is not None:
                await self.post_conversation(client, member, sent)
            return
        owned = await self._own(client, member, target)
        if owned is None:
            return
        if not self._takes(owned, choice):
            # A button of an earlier step (the conversation moved on by an event, or in
            # another message): said so, with where it stands now, not "not understood".
            await self.post_text(client, member, kit.words("slack.stale_button", member.locale))
            await self.post_conversation(client, member, owned)
            return
        await _mark_answered(
            client,
            body,
            str(action.get("action_id")),
            owned.locale,
            kit.words("slack.fallback_text", member.locale),
        )
        await self._answer(client, member, target, Input(choice=choice))

    def _takes(self, record: ConversationRecord, choice: str) -> bool:
        """Whether the conversation's current step takes this button's choice."""
        if choice in NAVIGATION or choice in (MENU, "retry"):
            return True
        if choice.startswith(("lang:", INVITATION)):
            return True
        steps = kit.split_steps(choice)
        trigger = (steps[0] if steps else choice).partition(":")[0]
        return trigger in self.conversations.engine.accepts(record).triggers

    async def on_link(self, ack: AsyncAck) -> None:
        # A URL button opens the browser; Slack still tells the app, which only acks.
        await ack()

    async def on_channel_button(
        self,
        ack: AsyncAck,
        action: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        office_id, _, channel_id = str(action.get("value") or "").partition(kit.SEPARATOR)
        await self._after_ack(
            context, lambda member: self._set_channel(client, member, channel_id, office_id)
        )

    # ------------------------------------------------------------------ modals
    async def on_form_button(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        locale = await person(context).locale()
        conversation_id = str(action.get("value") or "")
        channel_id = (body.get("channel") or {}).get("id")
        opened = await self._open_loading(context, client, str(body["trigger_id"]), locale)
        if opened is None:
            await self._after_ack(
                context, lambda member: self._form_fallback(client, member, conversation_id)
            )
            return
        await self._after_ack(
            context,
            lambda member: self._fill_form(client, member, conversation_id, opened, channel_id),
        )

    async def _open_loading(
        self, context: AsyncBoltContext, client: AsyncWebClient, trigger_id: str, locale: str
    ) -> dict[str, Any] | None:
        """Open a modal at once (trigger ids die after 3 s); None when Slack says it is too late.

        A replay reuses the modal the acking process opened: its trigger is long gone.
        """
        carried: dict[str, Any] = context[CARRIED]
        if self.replaying:
            kept: dict[str, Any] | None = carried.get("opened")
            return kept
        try:
            answer = await client.views_open(trigger_id=trigger_id, view=kit.loading_view(locale))
        except SlackApiError as exc:
            if exc.response.get("error") in TRIGGER_GONE:
                log.info("views.open refused: %s", exc.response.get("error"))
                carried["opened"] = None
                return None
            raise
        view: dict[str, Any] = answer["view"]
        # What the work needs of it, and nothing more: it travels in the job.
        carried["opened"] = {"id": view["id"], "hash": view.get("hash")}
        return view

    async def _fill_form(
        self,
        client: AsyncWebClient,
        member: SlackMember,
        conversation_id: str,
        opened: dict[str, Any],
        channel_id: str | None,
    ) -> None:
        record = await self._own(client, member, conversation_id)
        if record is None:
            return
        await client.views_update(
            view_id=opened["id"],
            hash=opened.get("hash"),
            view=kit.form_view(
                rendered(record), secret=self.conversations.is_secret(record), channel_id=channel_id
            ),
        )

    async def _form_fallback(
        self, client: AsyncWebClient, member: SlackMember, conversation_id: str
    ) -> None:
        record = await self._own(client, member, conversation_id)
        if record is None:
            return
        await self.post_text(client, member, kit.words("slack.modal.expired", member.locale))
        await self.post_conversation(client, member, record, form=False)

    async def on_form_submit(
        self,
        ack: AsyncAck,
        view: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()  # closes the modal; the answer comes in the DM
        metadata = json.loads(view.get("private_metadata") or "{}")
        conversation_id = str(metadata.get("conversation_id") or "")
        values = view.get("state", {}).get("values", {})
        text = str(values.get(kit.INPUT_BLOCK, {}).get(kit.INPUT_ACTION, {}).get("value") or "")
        await self._after_ack(
            context, lambda member: self._submit(client, member, conversation_id, text)
        )

    async def _submit(
        self, client: AsyncWebClient, member: SlackMember, conversation_id: str, text: str
    ) -> None:
        if await self._own(client, member, conversation_id) is None:
            return
        await self._answer(client, member, conversation_id, Input(text=text))

    async def on_info_submit(self, ack: AsyncAck) -> None:
        await ack()

    async def _offices(
        self, client: AsyncWebClient, member: SlackMember, opened: dict[str, Any] | None
    ) -> None:
        """The member's offices in the modal opened for them, or in the DM if it expired."""
        body = await self.office_overview(member)
        if opened is None:
            await self.post_text(client, member, kit.words("slack.modal.expired", member.locale))
            await self.post(client, member, kit.words("slack.fallback_text", member.locale), body)
            return
        await client.views_update(
            view_id=opened["id"],
            hash=opened.get("hash"),
            view=kit.info_view(member.locale, body),
        )

    async def office_overview(self, member: SlackMember) -> list[kit.Block]:
        """Each office of the member with its accounts, as the back end shows them to them."""
        backend = self.members.backend(member)
        offices = await self.members.offices(member, fresh=True)
        described = []
        for office in offices:
            accounts = await backend.accounts(office.id)
            described.append(
                {
                    "name": office.name,
                    "role": office.role,
                    "accounts": [
                        {
                            "name": a.name,
                            "issuer": a.issuer,
                            "sync_method": a.sync_method,
                            "status": a.status,
                            "last_synced_at": a.last_synced_at,
                        }
                        for a in accounts
                    ],
                }
            )
        return kit.office_blocks(described, member.locale)

    # ------------------------------------------------------------------ App Home, DMs
    async def on_home_opened(
        self, event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        if event.get("tab", "home") != "home":
            return
        await self._carry_out(context, lambda: self._home(client, context))

    async def _home(self, client: AsyncWebClient, context: AsyncBoltContext) -> None:
        who = person(context)
        try:
            member = await who.member()
            locale = member.locale
            body = await self.office_overview(member)
        except MemberUnknown as unknown:
            locale = await who.locale()
            body = [kit.section(kit.words(unknown.message_key, locale, email=unknown.email))]
        except (BackendUnavailable, BackendRefusal):
            locale = await who.locale()
            body = [kit.section(kit.words("slack.backend_unavailable", locale))]
        await client.views_publish(user_id=who.user_id, view=kit.home_view(locale, body))

    async def on_message(
        self, event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        # Only what a person typed or shared in the DM: no edits, joins, or bots (ours included).
        subtype = event.get("subtype")
        if event.get("bot_id"):
            return
        if event.get("thread_ts") and event.get("channel_type") in ("channel", "group"):
            if subtype in (None, "thread_broadcast"):
                await self._support_reply(client, context, event)
            return
        if event.get("channel_type") != "im":
            return
        if subtype == "file_share" and event.get("files"):
            await self._after_ack(context, lambda member: self._shared_file(client, member, event))
            return
        text = str(event.get("text") or "").strip()
        if subtype or not text:
            return
        await self._after_ack(context, lambda member: self._dm(client, member, event))

    # ------------------------------------------------------------------ the support channel
    def _in_support_channel(self, team_id: str, channel_id: str) -> bool:
        if not self.support_channel or not channel_id:
            return False
        team, _, channel = self.support_channel.rpartition(":")
        return channel == channel_id and (not team or team == team_id)

    async def _support_reply(
        self, client: AsyncWebClient, context: AsyncBoltContext, event: dict[str, Any]
    ) -> None:
        """A reply in a handoff's thread of the support channel: support's answer, for
        the person's conversation. Support staff need not be renkei members."""
        channel = str(event.get("channel") or "")
        thread = str(event.get("thread_ts") or "")
        text = str(event.get("text") or "").strip()
        if not text or not self._in_support_channel(str(context.team_id or ""), channel):
            return

        async def work() -> None:
            event_id = await self.store.event_of_message(channel, thread)
            if event_id is None or not event_id.startswith(HANDOFF_EVENT):
                return  # a thread of another message of the channel: not renkei's
            handoff_id = event_id.removeprefix(HANDOFF_EVENT)
            engine = self.conversations.engine
            author = str(event.get("user") or "")
            if await engine.support_answer(handoff_id, text, author, "slack"):
                return
            # The channel's language (notifications.CHANNEL_LOCALE).
            closed = kit.words("slack.notify.handoff_closed", "ja")
            await client.chat_postMessage(
                channel=channel, thread_ts=thread, text=closed, blocks=[kit.section(closed)]
            )

        await self._carry_out(context, work)

    async def on_resolve(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        """The handoff message's "mark resolved": the assistant takes the conversation back."""
        await ack()
        channel = str((body.get("channel") or {}).get("id") or "")
        if not self._in_support_channel(str(context.team_id or ""), channel):
            return
        handoff_id = str(action.get("value") or "")
        author = str((body.get("user") or {}).get("id") or "")

        async def work() -> None:
            await self.conversations.engine.resolve_handoff(handoff_id, author, "slack")
            # The support channel's language (notifications.CHANNEL_LOCALE).
            await _mark_answered(client, body, kit.RESOLVE_ACTION, "ja", None)

        await self._carry_out(context, work)

    async def on_mention(
        self, event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        """renkei is named in a channel: pointed to the DM, in the mention's thread."""
        channel = str(event.get("channel") or "")
        if not channel or event.get("bot_id"):
            return
        await self._carry_out(context, lambda: self._point_to_dm(client, event, channel))

    async def _point_to_dm(
        self, client: AsyncWebClient, event: dict[str, Any], channel: str
    ) -> None:
        text = kit.words(
            "slack.mention", "ja"
        )  # a channel's language (notifications.CHANNEL_LOCALE)
        await client.chat_postMessage(
            channel=channel,
            thread_ts=str(event.get("thread_ts") or event.get("ts") or "") or None,
            text=text,
            blocks=[kit.section(text)],
        )

    async def on_ignored(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        log.debug("Slack %s acked, nothing to do", body.get("type"))

    async def on_ignored_event(self, event: dict[str, Any]) -> None:
        log.debug("Slack event %s acked, nothing to do", event.get("type"))

    async def _dm_member(self, member: SlackMember, event: dict[str, Any]) -> SlackMember:
        """The member writing in their DM; the DM is remembered for the replies."""
        if member.dm_channel_id is None and event.get("channel"):
            channel = str(event["channel"])
            await self.store.set_dm(member.team_id, member.user_id, channel)
            member = dataclasses.replace(member, dm_channel_id=channel)
        return member

    async def _dm(self, client: AsyncWebClient, member: SlackMember, event: dict[str, Any]) -> None:
        member = await self._dm_member(member, event)
        conversation_id = member.conversation_id
        if conversation_id is None:
            await self.members.may_talk(member)
            conversation_id = (await self._start(member)).id
        await self._answer(client, member, conversation_id, Input(text=str(event["text"])))

    async def _shared_file(
        self, client: AsyncWebClient, member: SlackMember, event: dict[str, Any]
    ) -> None:
        """A file shared in the DM goes to the conversation when its step asks for one."""
        member = await self._dm_member(member, event)
        record = None
        if member.conversation_id is not None:
            record = await self._own(client, member, member.conversation_id)
            if record is None:
                return
        if record is None or not self.conversations.takes_file(record):
            await self.post_text(
                client, member, kit.words("slack.file.not_expected", member.locale)
            )
            if record is not None:
                await self.post_conversation(client, member, record)
            return
        # One file per step: the first of the message is the one taken.
        shared: dict[str, Any] = event["files"][0]
        got = await download(client, str(shared.get("id") or ""))
        if got.data is None:
            problem = got.problem or "slack.file.not_read"
            await self.post_text(client, member, kit.words(problem, member.locale, file=got.name))
            return
        await self._answer(client, member, record.id, Input(file_name=got.name, file_data=got.data))

    # ------------------------------------------------------------------ the office channel
    async def _set_channel(
        self, client: AsyncWebClient, member: SlackMember, channel_id: str, wanted: str
    ) -> None:
        if not channel_id or channel_id.startswith("D"):
            await self.post_text(client, member, kit.words("slack.channel.in_dm", member.locale))
            return
        offices = await self.members.offices(member, fresh=True)
        wanted = wanted.strip()
        if wanted:
            offices = [o for o in offices if wanted in (o.id, o.name)] or offices
        backend = self.members.backend(member)
        if len(offices) > 1:
            admin = [o for o in offices if o.role == "admin"]
            if not admin:
                await self.post_text(
                    client, member, kit.words("slack.channel.no_admin_office", member.locale)
                )
                return
            # Two offices of one name each show an admin and a short id.
            labels = [choice_label(c, member.locale) for c in office_choices(admin)]
            buttons = [
                kit.button(
                    f"{kit.CHANNEL_ACTION}-{i}", labels[i], f"{o.id}{kit.SEPARATOR}{channel_id}"
                )
                for i, o in enumerate(admin)
            ]
            text = kit.words("slack.channel.choose", member.locale)
            await self.post(client, member, text, [kit.section(text), *kit.actions(buttons)])
            return
        office = await backend.office(offices[0].id)  # the role as the back end says it now
        if office.role != "admin":
            await self.post_text(
                client,
                member,
                kit.words("slack.channel.not_admin", member.locale, office=office.name),
            )
            return
        assert member.email is not None
        # Said in the channel first: a channel the bot cannot post to (private and not
        # invited, archived, gone) is refused by Slack here and is not saved.
        text = kit.words("slack.channel.set", member.locale, office=kit.escape(office.name))
        try:
            await client.chat_postMessage(channel=channel_id, text=text, blocks=[kit.section(text)])
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error not in CHANNEL_UNUSABLE:
                raise
            log.info("notice channel refused by Slack: %s", error)
            await self.post_text(
                client, member, kit.words(f"slack.channel.{CHANNEL_UNUSABLE[error]}", member.locale)
            )
            return
        await self.store.set_office_channel(office.id, member.team_id, channel_id, member.email)

    # ------------------------------------------------------------------ the conversation
    async def _start(self, member: SlackMember, office_id: str | None = None) -> ConversationRecord:
        assert member.email is not None
        record = await self.conversations.start(member.email, member.locale, office_id)
        await self.store.set_conversation(member.team_id, member.user_id, record.id)
        return record

    async def _own(
        self, client: AsyncWebClient, member: SlackMember, conversation_id: str
    ) -> ConversationRecord | None:
        try:
            record = await self.conversations.get(conversation_id)
        except ConversationNotFound:
            await self.post_text(
                client, member, kit.words("slack.conversation_gone", member.locale)
            )
            return None
        if record.user != member.email:
            await self.post_text(client, member, kit.words("slack.not_yours", member.locale))
            return None
        return record

    async def _answer(
        self, client: AsyncWebClient, member: SlackMember, conversation_id: str, given: Input
    ) -> None:
        """One input to the conversation, and its answer posted to the person's DM."""
        record = await self._send(client, member, conversation_id, given)
        if record is not None:
            await self.post_conversation(client, member, record)

    async def _send(
        self, client: AsyncWebClient, member: SlackMember, conversation_id: str, given: Input
    ) -> ConversationRecord | None:
        try:
            record = await self.conversations.send(conversation_id, given)
        except ConversationNotFound:
            await self.post_text(
                client, member, kit.words("slack.conversation_gone", member.locale)
            )
            return None
        except ConversationConflict:
            # Someone (or an event) moved it meanwhile: show where it stands now.
            await self.post_text(client, member, kit.words("slack.conflict", member.locale))
            return await self.conversations.get(conversation_id)
        await self.store.set_conversation(member.team_id, member.user_id, record.id)
        return record

    async def post_conversation(
        self,
        client: AsyncWebClient,
        member: SlackMember,
        record: ConversationRecord,
        *,
        form: bool = True,
    ) -> None:
        conversation = rendered(record)
        if not conversation["replies"]:
            return  # a person of support owns the conversation: the assistant keeps quiet
        blocks = kit.conversation_blocks(
            conversation,
            base_url=self.public_url,
            form=form and self.conversations.takes_text(record),
            secret=self.conversations.is_secret(record),
        )
        await self.post(client, member, kit.fallback_text(conversation), blocks)

    async def post_text(self, client: AsyncWebClient, member: SlackMember, text: str) -> None:
        await self.post(client, member, text, [kit.section(kit.escape(text))])

    async def post(
        self, client: AsyncWebClient, member: SlackMember, text: str, blocks: list[kit.Block]
    ) -> None:
        channel = await self.members.dm_channel(client, member)
        await client.chat_postMessage(channel=channel, text=text, blocks=blocks)

    async def _after_ack(self, context: AsyncBoltContext, work: Work) -> None:
        """The one envelope of every request's work: run it after the ack, for the member
        behind the request; what goes wrong is told to the person, not dropped."""
        who = person(context)

        async def for_member() -> None:
            try:
                await work(await who.member())
            except MemberUnknown as unknown:
                await self._tell(who, unknown.message_key, email=unknown.email)
            except (BackendUnavailable, BackendRefusal) as exc:
                log.warning("back end refused or unavailable for a Slack request: %s", exc)
                await self._tell(who, "slack.backend_unavailable")

        await self._carry_out(context, for_member)

    async def _carry_out(
        self, context: AsyncBoltContext, run: Callable[[], Awaitable[None]]
    ) -> None:
        """Queue the request for a worker (the acking process), or run ``run`` (the
        worker's replay, or a front end with no queue).

        A request Slack sends again (X-Slack-Retry-Num) is acked like the first and
        queued once: its key is noted as seen in the transaction that queues it, so a
        retry that reaches another process is caught too.
        """
        key = context.get(REQUEST_KEY)
        if self.deferred is not None and not self.replaying:
            request = SlackRequest(body=dict(context[PAYLOAD]), carried=dict(context[CARRIED]))
            if not await self.deferred.defer(str(key) if key is not None else None, request):
                log.info("Slack request %s seen before; its work is not done twice", key)
            return
        if self.deferred is None and key is not None and not await self.store.first_time(str(key)):
            log.info("Slack request %s seen before; its work is not done twice", key)
            return
        await run()

    async def _tell(self, who: Person, key: str, **params: Any) -> None:
        """Say why nothing was done: in the DM, or, when Slack opens no DM (or refuses the
        post), only to the person where they asked (the request's response_url)."""
        locale = await who.locale()
        text = kit.words(key, locale, **params)
        blocks = [kit.section(kit.escape(text))]
        try:
            opened = await who.client.conversations_open(users=who.user_id)
            channel = str((opened.get("channel") or {})["id"])
            await who.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
            return
        except SlackApiError as exc:
            if who.respond is None:
                log.warning("could not tell a Slack user %s: %s", key, exc.response.get("error"))
                return
            log.info("no DM for a Slack user (%s); answering in place", exc.response.get("error"))
        await who.respond(
            text=text, blocks=blocks, response_type="ephemeral", replace_original=False
        )


async def _mark_answered(
    client: AsyncWebClient,
    body: dict[str, Any],
    action_id: str,
    locale: str,
    fallback: str | None,
) -> None:
    """The clicked message, its buttons replaced by what was chosen (``action_id``'s
    label): pressed once, it cannot be pressed again."""
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id")
    if not channel or not message.get("ts"):
        return
    label = kit.label_of(message.get("blocks") or [], action_id)
    await client.chat_update(
        channel=channel,
        ts=message["ts"],
        text=str(message.get("text") or fallback or label),
        blocks=kit.answered(message.get("blocks") or [], label, locale),
    )
