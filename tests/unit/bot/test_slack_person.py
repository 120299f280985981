"""The Slack middleware notes who sent a request without waiting on anything; the member
behind them is resolved once per request, when the work after the ack first asks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlencode

import httpx
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversations import Conversations
from bot.slack.listeners import PERSON, REQUEST_KEY, Person, SlackFrontEnd, person
from bot.slack.members import Members
from bot.slack.ports import Notification, OfficeChannel, Posting, SlackMember

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


class MemoryStore:
    """``bot.slack.ports.SlackStore`` in memory, counting the reads of members."""

    def __init__(self, *, usable: bool = True) -> None:
        self.usable = usable
        self.members: dict[tuple[str, str], SlackMember] = {}
        self.reads = 0
        self.clock: Callable[[], dt.datetime] = lambda: START

    def _use(self) -> None:
        # A store that must not be touched: before an ack nothing waits on the database.
        assert self.usable, "the store was used before the ack"

    async def first_time(self, key: str) -> bool:
        self._use()
        return True

    async def forget_seen_before(self, before: dt.datetime) -> None:
        self._use()

    async def member(self, team_id: str, user_id: str) -> SlackMember | None:
        self._use()
        self.reads += 1
        return self.members.get((team_id, user_id))

    async def save_member(
        self, team_id: str, user_id: str, email: str | None, locale: str
    ) -> SlackMember:
        self._use()
        saved = SlackMember(team_id, user_id, email, locale, None, None, START)
        self.members[(team_id, user_id)] = saved
        return saved

    async def set_dm(self, team_id: str, user_id: str, channel_id: str) -> None:
        self._use()

    async def set_conversation(self, team_id: str, user_id: str, conversation_id: str) -> None:
        self._use()

    async def members_of_conversation(self, conversation_id: str) -> list[SlackMember]:
        self._use()
        return []

    async def set_office_channel(
        self, office_id: str, team_id: str, channel_id: str, set_by: str
    ) -> None:
        self._use()

    async def office_channel(self, office_id: str) -> OfficeChannel | None:
        self._use()
        return None

    async def members_by_email(self, email: str) -> list[SlackMember]:
        self._use()
        return []

    async def channel_setters(self, team_id: str, channel_id: str) -> list[SlackMember]:
        self._use()
        return []

    async def enqueue(
        self,
        event_id: str,
        team_id: str | None,
        channel_id: str,
        text: str,
        blocks: list[dict[str, Any]],
        thread_ts: str | None = None,
    ) -> bool:
        self._use()
        return True

    async def posting(self, event_id: str, channel_id: str) -> Posting | None:
        self._use()
        return None

    async def event_of_message(self, channel_id: str, message_ts: str) -> str | None:
        self._use()
        return None

    async def waiting_messages(self, channel_id: str, limit: int = 20) -> list[Notification]:
        self._use()
        return []

    async def queue_handoff_routing(self) -> None:
        self._use()

    async def queue_channel(self, channel_id: str) -> None:
        self._use()

    async def overdue_channels(self, due_before: dt.datetime) -> list[str]:
        self._use()
        return []

    async def mark_sent(self, notification_id: int, message_ts: str | None) -> None:
        self._use()

    async def mark_retry(self, notification_id: int, delay: float, error: str) -> None:
        self._use()

    async def mark_failed(self, notification_id: int, error: str) -> None:
        self._use()


def members_over(store: MemoryStore) -> Members:
    return Members(store, httpx.AsyncClient(base_url="http://renkei/api/v1"))


async def test_the_middleware_notes_the_person_and_waits_on_nothing() -> None:
    store = MemoryStore(usable=False)
    front = SlackFrontEnd(
        cast(Conversations, object()),
        store,
        members_over(store),
        public_url="https://renkei.example",
    )
    body = urlencode(
        {"command": "/renkei", "text": "", "team_id": "T1", "user_id": "U1", "trigger_id": "t-1"}
    )
    request = AsyncBoltRequest(
        body=body, headers={"content-type": ["application/x-www-form-urlencoded"]}
    )
    client = AsyncWebClient(token="xoxb-test", base_url="http://slack.invalid/api/")
    request.context["client"] = client
    listened: list[Person] = []

    async def listener() -> BoltResponse:
        listened.append(person(request.context))
        return BoltResponse(status=200)

    await front.note(request, BoltResponse(status=200), listener)

    (who,) = listened
    assert request.context[PERSON] is who
    assert (who.team_id, who.user_id, who.client) == ("T1", "U1", client)
    assert request.context[REQUEST_KEY] == "/renkei:t-1"


async def test_the_member_is_resolved_once_per_request() -> None:
    store = MemoryStore()
    known = SlackMember("T1", "U1", "owner@example.jp", "en", "D1", None, START)
    store.members[("T1", "U1")] = known
    client = AsyncWebClient(token="xoxb-test", base_url="http://slack.invalid/api/")
    who = Person(members_over(store), client, "T1", "U1")

    assert store.reads == 0  # nothing asked until the work asks
    first = await who.member()
    again = await who.member()

    assert first == again == known
    assert store.reads == 1
