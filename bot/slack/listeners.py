"""What renkei does with each Slack request: slash command, buttons, modals, App Home, DMs.

Every listener acks at once (Slack gives up after 3 s) and does the back-end work
after the ack; bolt runs the rest of the listener as a task. Replies go to the
person's DM with the app, where their conversation lives.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversations import Conversations, choice_label, rendered
from bot.slack import blocks as kit
from bot.slack.after_ack import AfterAck
from bot.slack.errors import MemberUnknown
from bot.slack.members import Members
from bot.slack.store import SlackMember, SlackStore
from statemachine.engine import ConversationConflict, ConversationNotFound, Input
from statemachine.offices import office_choices
from statemachine.port import BackendRefusal, BackendUnavailable
from statemachine.store import ConversationRecord

log = logging.getLogger(__name__)

COMMAND = "/renkei"
# Subcommands that start a procedure: the choice value the menu would send.
FLOW_COMMANDS = {
    "register": "register",
    "switch": "switch_to_api",
    "multi": "multi_office",
    "supplementary": "supplementary_card",
    "revoke": "amex_revoke",
    "jcb": "jcb_card_change",
    "status": "status",
}
REQUEST_KEY = "renkei_request_key"  # in bolt's per-request context
NEW_CONVERSATION = "new"  # a button's conversation part: start one (notices in channels)
# Errors of views.open that mean the modal cannot be shown: say it in the DM instead.
TRIGGER_GONE = {"expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"}

# Statement files are small (a year of lines is well under 1 MB); a larger one is not one.
MAX_FILE_BYTES = 10 * 1024 * 1024

Next = Callable[[], Awaitable[BoltResponse]]


class _TooLarge(Exception):
    """A download passed MAX_FILE_BYTES: it is stopped, not kept in memory."""


def _slack_file_url(url: str, api_url: str) -> bool:
    """Whether the bot token may be sent to ``url``: Slack's file hosts, or the Web API's own.

    The token opens the whole workspace to whoever holds it; a file address from an event
    is data, so it is only followed to Slack (or to where SLACK_API_URL points).
    """
    target, api = httpx.URL(url), httpx.URL(api_url)
    if target.scheme == api.scheme and target.host == api.host and target.port == api.port:
        return True
    return target.scheme == "https" and (
        target.host == "slack.com" or target.host.endswith(".slack.com")
    )


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


class SlackFrontEnd:
    def __init__(
        self,
        conversations: Conversations,
        store: SlackStore,
        members: Members,
        after_ack: AfterAck | None = None,
    ) -> None:
        self.conversations = conversations
        self.store = store
        self.members = members
        self.after_ack = after_ack or AfterAck()

    def register(self, app: AsyncApp) -> None:
        app.middleware(self.note_request_key)
        app.command(COMMAND)(self.on_command)
        app.action(re.compile(f"^{kit.CHOICE_ACTION}"))(self.on_choice)
        app.action(re.compile(f"^{kit.LINK_ACTION}"))(self.on_link)
        app.action(kit.FORM_ACTION)(self.on_form_button)
        app.action(re.compile(f"^{kit.CHANNEL_ACTION}"))(self.on_channel_button)
        app.view(kit.FORM_CALLBACK)(self.on_form_submit)
        app.view(kit.INFO_CALLBACK)(self.on_info_submit)
        app.event("app_home_opened")(self.on_home_opened)
        app.event("message")(self.on_message)

    # ------------------------------------------------------------------ middleware
    async def note_request_key(
        self, req: AsyncBoltRequest, resp: BoltResponse, next: Next
    ) -> BoltResponse | None:
        """What makes this request unique, for ``_guarded`` to skip a retry's work."""
        req.context[REQUEST_KEY] = request_key(req.body)
        return await next()

    # ------------------------------------------------------------------ slash command
    async def on_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        team_id, user_id = str(context.team_id or ""), str(command["user_id"])
        word, _, rest = str(command.get("text") or "").strip().partition(" ")
        word = word.lower()
        locale = await self.members.cached_locale(team_id, user_id)
        if word == "help":
            await ack(text=kit.words("slack.help", locale))
            return
        known = word in ("", "cancel", "offices", "channel") or word in FLOW_COMMANDS
        if not known:
            await ack(text=kit.words("slack.unknown_subcommand", locale, word=word))
            return
        if self.after_ack.full:
            await ack(text=kit.words("slack.busy", locale))
            return
        channel_id = str(command.get("channel_id") or "")
        in_dm = channel_id.startswith("D")
        if word == "offices":
            await ack()
            await self._offices_modal(
                context, client, team_id, user_id, str(command["trigger_id"]), locale
            )
            return
        if word == "channel":
            await ack()
            await self._guarded(
                context,
                client,
                team_id,
                user_id,
                self._set_channel(client, team_id, user_id, channel_id, rest),
            )
            return
        if in_dm:
            await ack()
        else:
            await ack(text=kit.words("slack.replied_in_dm", locale))
        await self._guarded(
            context, client, team_id, user_id, self._command(client, team_id, user_id, word)
        )

    async def _command(self, client: AsyncWebClient, team_id: str, user_id: str, word: str) -> None:
        member = await self.members.resolve(client, team_id, user_id)
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
        team_id, user_id = str(context.team_id or ""), str(body["user"]["id"])
        await self._guarded(
            context, client, team_id, user_id, self._choice(client, team_id, user_id, body, action)
        )

    async def _choice(
        self,
        client: AsyncWebClient,
        team_id: str,
        user_id: str,
        body: dict[str, Any],
        action: dict[str, Any],
    ) -> None:
        member = await self.members.resolve(client, team_id, user_id)
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
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id")
        if channel and message.get("ts"):
            label = kit.label_of(message.get("blocks") or [], str(action.get("action_id")))
            await client.chat_update(
                channel=channel,
                ts=message["ts"],
                text=str(message.get("text") or kit.words("slack.fallback_text", member.locale)),
                blocks=kit.answered(message.get("blocks") or [], label, owned.locale),
            )
        await self._answer(client, member, target, Input(choice=choice))

    async def on_link(self, ack: AsyncAck) -> None:
        # A URL button opens the browser; Slack still tells the app, which only acks.
        await ack()

    async def on_channel_button(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        team_id, user_id = str(context.team_id or ""), str(body["user"]["id"])
        office_id, _, channel_id = str(action.get("value") or "").partition(kit.SEPARATOR)
        await self._guarded(
            context,
            client,
            team_id,
            user_id,
            self._set_channel(client, team_id, user_id, channel_id, office_id),
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
        team_id, user_id = str(context.team_id or ""), str(body["user"]["id"])
        locale = await self.members.cached_locale(team_id, user_id)
        conversation_id = str(action.get("value") or "")
        channel_id = (body.get("channel") or {}).get("id")
        opened = await self._open_loading(client, str(body["trigger_id"]), locale)
        if opened is None:
            await self._guarded(
                context,
                client,
                team_id,
                user_id,
                self._form_fallback(client, team_id, user_id, conversation_id),
            )
            return
        await self._guarded(
            context,
            client,
            team_id,
            user_id,
            self._fill_form(client, team_id, user_id, conversation_id, opened, channel_id),
        )

    async def _open_loading(
        self, client: AsyncWebClient, trigger_id: str, locale: str
    ) -> dict[str, Any] | None:
        """Open a modal at once (trigger ids die after 3 s); None when Slack says it is too late."""
        try:
            answer = await client.views_open(trigger_id=trigger_id, view=kit.loading_view(locale))
        except SlackApiError as exc:
            if exc.response.get("error") in TRIGGER_GONE:
                log.info("views.open refused: %s", exc.response.get("error"))
                return None
            raise
        view: dict[str, Any] = answer["view"]
        return view

    async def _fill_form(
        self,
        client: AsyncWebClient,
        team_id: str,
        user_id: str,
        conversation_id: str,
        opened: dict[str, Any],
        channel_id: str | None,
    ) -> None:
        member = await self.members.resolve(client, team_id, user_id)
        record = await self._own(client, member, conversation_id)
        if record is None:
            return
        await client.views_update(
            view_id=opened["id"],
            hash=opened.get("hash"),
            view=kit.form_view(
                rendered(record), secret=self._secret(record), channel_id=channel_id
            ),
        )

    async def _form_fallback(
        self, client: AsyncWebClient, team_id: str, user_id: str, conversation_id: str
    ) -> None:
        member = await self.members.resolve(client, team_id, user_id)
        record = await self._own(client, member, conversation_id)
        if record is None:
            return
        await self.post_text(client, member, kit.words("slack.modal.expired", member.locale))
        await self.post_conversation(client, member, record, form=False)

    async def on_form_submit(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()  # closes the modal; the answer comes in the DM
        team_id, user_id = str(context.team_id or ""), str(body["user"]["id"])
        metadata = json.loads(view.get("private_metadata") or "{}")
        values = view.get("state", {}).get("values", {})
        text = str(values.get(kit.INPUT_BLOCK, {}).get(kit.INPUT_ACTION, {}).get("value") or "")
        await self._guarded(
            context,
            client,
            team_id,
            user_id,
            self._submit(
                client, team_id, user_id, str(metadata.get("conversation_id") or ""), text
            ),
        )

    async def _submit(
        self, client: AsyncWebClient, team_id: str, user_id: str, conversation_id: str, text: str
    ) -> None:
        member = await self.members.resolve(client, team_id, user_id)
        if await self._own(client, member, conversation_id) is None:
            return
        await self._answer(client, member, conversation_id, Input(text=text))

    async def on_info_submit(self, ack: AsyncAck) -> None:
        await ack()

    async def _offices_modal(
        self,
        context: AsyncBoltContext,
        client: AsyncWebClient,
        team_id: str,
        user_id: str,
        trigger_id: str,
        locale: str,
    ) -> None:
        opened = await self._open_loading(client, trigger_id, locale)

        async def work() -> None:
            member = await self.members.resolve(client, team_id, user_id)
            body = await self.office_overview(member)
            if opened is None:
                await self.post_text(
                    client, member, kit.words("slack.modal.expired", member.locale)
                )
                await self.post(
                    client, member, kit.words("slack.fallback_text", member.locale), body
                )
                return
            await client.views_update(
                view_id=opened["id"],
                hash=opened.get("hash"),
                view=kit.info_view(member.locale, body),
            )

        await self._guarded(context, client, team_id, user_id, work())

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
        team_id, user_id = str(context.team_id or ""), str(event["user"])
        try:
            member = await self.members.resolve(client, team_id, user_id)
            locale = member.locale
            body = await self.office_overview(member)
        except MemberUnknown as unknown:
            locale = await self.members.cached_locale(team_id, user_id)
            body = [kit.section(kit.words(unknown.message_key, locale, email=unknown.email))]
        except (BackendUnavailable, BackendRefusal):
            locale = await self.members.cached_locale(team_id, user_id)
            body = [kit.section(kit.words("slack.backend_unavailable", locale))]
        await client.views_publish(user_id=user_id, view=kit.home_view(locale, body))

    async def on_message(
        self, event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        # Only what a person typed or shared in the DM: no edits, joins, or bots (ours included).
        subtype = event.get("subtype")
        if event.get("channel_type") != "im" or event.get("bot_id"):
            return
        team_id, user_id = str(context.team_id or ""), str(event.get("user") or "")
        if subtype == "file_share" and event.get("files"):
            await self._guarded(
                context,
                client,
                team_id,
                user_id,
                self._shared_file(client, team_id, user_id, event),
            )
            return
        text = str(event.get("text") or "").strip()
        if subtype or not text:
            return
        await self._guarded(
            context, client, team_id, user_id, self._dm(client, team_id, user_id, event)
        )

    async def _dm_member(
        self, client: AsyncWebClient, team_id: str, user_id: str, event: dict[str, Any]
    ) -> SlackMember:
        """The member writing in their DM; the DM is remembered for the replies."""
        member = await self.members.resolve(client, team_id, user_id)
        if member.dm_channel_id is None and event.get("channel"):
            await self.store.set_dm(team_id, user_id, str(event["channel"]))
            member = await self.members.resolve(client, team_id, user_id)
        return member

    async def _dm(
        self, client: AsyncWebClient, team_id: str, user_id: str, event: dict[str, Any]
    ) -> None:
        member = await self._dm_member(client, team_id, user_id, event)
        conversation_id = member.conversation_id
        if conversation_id is None:
            await self.members.may_talk(member)
            conversation_id = (await self._start(member)).id
        await self._answer(client, member, conversation_id, Input(text=str(event["text"])))

    async def _shared_file(
        self, client: AsyncWebClient, team_id: str, user_id: str, event: dict[str, Any]
    ) -> None:
        """A file shared in the DM goes to the conversation when its step asks for one."""
        member = await self._dm_member(client, team_id, user_id, event)
        record = None
        if member.conversation_id is not None:
            record = await self._own(client, member, member.conversation_id)
            if record is None:
                return
        if record is None or not self._wants_file(record):
            await self.post_text(
                client, member, kit.words("slack.file.not_expected", member.locale)
            )
            if record is not None:
                await self.post_conversation(client, member, record)
            return
        # One file per step: the first of the message is the one taken.
        shared: dict[str, Any] = event["files"][0]
        name, data = await self._download(client, member, str(shared.get("id") or ""))
        if data is None:
            return
        await self._answer(client, member, record.id, Input(file_name=name, file_data=data))

    async def _download(
        self, client: AsyncWebClient, member: SlackMember, file_id: str
    ) -> tuple[str, bytes | None]:
        """The file's name and bytes, read with the bot token; None (and the person told) if not."""
        # The message event may carry only the file id: files.info has the download address.
        info = await client.files_info(file=file_id)
        file: dict[str, Any] = info.get("file") or {}
        name = str(file.get("name") or file.get("title") or "statements.csv")
        if int(file.get("size") or 0) > MAX_FILE_BYTES:
            await self.post_text(
                client, member, kit.words("slack.file.too_large", member.locale, file=name)
            )
            return name, None
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        if not url or not _slack_file_url(url, client.base_url) or client.token is None:
            log.warning("file %s has no download address of Slack's", file_id)
            await self.post_text(
                client, member, kit.words("slack.file.not_read", member.locale, file=name)
            )
            return name, None
        try:
            async with (
                httpx.AsyncClient(timeout=30, follow_redirects=True) as http,
                http.stream(
                    "GET", url, headers={"Authorization": f"Bearer {client.token}"}
                ) as response,
            ):
                response.raise_for_status()
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_FILE_BYTES:  # files.info's size may be missing or wrong
                        raise _TooLarge
        except _TooLarge:
            await self.post_text(
                client, member, kit.words("slack.file.too_large", member.locale, file=name)
            )
            return name, None
        except httpx.HTTPError as exc:
            log.warning("file %s not downloaded: %s", file_id, exc)
            await self.post_text(
                client, member, kit.words("slack.file.not_read", member.locale, file=name)
            )
            return name, None
        return name, bytes(data)

    # ------------------------------------------------------------------ the office channel
    async def _set_channel(
        self, client: AsyncWebClient, team_id: str, user_id: str, channel_id: str, wanted: str
    ) -> None:
        member = await self.members.resolve(client, team_id, user_id)
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
        await self.store.set_office_channel(office.id, team_id, channel_id, member.email)
        text = kit.words("slack.channel.set", member.locale, office=kit.escape(office.name))
        await client.chat_postMessage(channel=channel_id, text=text, blocks=[kit.section(text)])

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

    def _secret(self, record: ConversationRecord) -> bool:
        if record.flow is None:
            return False
        return self.conversations.engine.flows[record.flow].state(record.state).secret

    def _wants_file(self, record: ConversationRecord) -> bool:
        """The conversation's step takes a file: some transition fires on ``file`` from it."""
        if record.flow is None:
            return False
        for transition in self.conversations.engine.flows[record.flow].transitions:
            sources = transition.get("source")
            sources = [sources] if isinstance(sources, str) else list(sources or [])
            if transition.get("trigger") == "file" and (record.state in sources or "*" in sources):
                return True
        return False

    def _wants_text(self, record: ConversationRecord) -> bool:
        if record.flow is None:
            return False
        state = self.conversations.engine.flows[record.flow].state(record.state)
        return state.text_trigger is not None

    async def post_conversation(
        self,
        client: AsyncWebClient,
        member: SlackMember,
        record: ConversationRecord,
        *,
        form: bool = True,
    ) -> None:
        conversation = rendered(record)
        blocks = kit.conversation_blocks(
            conversation, form=form and self._wants_text(record), secret=self._secret(record)
        )
        await self.post(client, member, kit.fallback_text(conversation), blocks)

    async def post_text(self, client: AsyncWebClient, member: SlackMember, text: str) -> None:
        await self.post(client, member, text, [kit.section(kit.escape(text))])

    async def post(
        self, client: AsyncWebClient, member: SlackMember, text: str, blocks: list[kit.Block]
    ) -> None:
        channel = await self.members.dm_channel(client, member)
        await client.chat_postMessage(channel=channel, text=text, blocks=blocks)

    async def _guarded(
        self,
        context: AsyncBoltContext,
        client: AsyncWebClient,
        team_id: str,
        user_id: str,
        work: Coroutine[Any, Any, None],
    ) -> None:
        """Run the work after the ack; what goes wrong is told to the person, not dropped.

        A request Slack sends again (X-Slack-Retry-Num) is acked like the first and its
        work skipped here: the check writes to the database, which would make the ack
        wait behind other writers if it came first. Kept in the database, so a retry
        that reaches another process is caught too.
        """
        key = context.get(REQUEST_KEY)
        try:
            first = key is None or await self.store.first_time(str(key))
        except BaseException:
            work.close()
            raise
        if not first:
            log.info("Slack request %s seen before; its work is not done twice", key)
            work.close()
            return
        if self.after_ack.full:  # a button or a message in a flood: said, not queued
            work.close()
            await self._tell(client, team_id, user_id, "slack.busy")
            return
        try:
            await self.after_ack.run(work)
        except MemberUnknown as unknown:
            await self._tell(client, team_id, user_id, unknown.message_key, email=unknown.email)
        except (BackendUnavailable, BackendRefusal) as exc:
            log.warning("back end refused or unavailable for a Slack request: %s", exc)
            await self._tell(client, team_id, user_id, "slack.backend_unavailable")

    async def _tell(
        self, client: AsyncWebClient, team_id: str, user_id: str, key: str, **params: Any
    ) -> None:
        locale = await self.members.cached_locale(team_id, user_id)
        text = kit.words(key, locale, **params)
        opened = await client.conversations_open(users=user_id)
        channel = str((opened.get("channel") or {})["id"])
        await client.chat_postMessage(
            channel=channel, text=text, blocks=[kit.section(kit.escape(text))]
        )
