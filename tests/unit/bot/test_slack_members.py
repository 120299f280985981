"""A member's offices are asked of the back end at most once a minute, emptiness never kept."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from backend.db.slack_store import SqlSlackStore
from bot.slack.errors import NotAMember
from bot.slack.members import OFFICES_FRESH_FOR, Members
from bot.slack.ports import SlackMember

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
OFFICE = {"id": "o1", "name": "渋谷店", "role": "admin", "created_at": START.isoformat()}


class Backend:
    """Plays renkei's REST API for ``GET /offices``, counting the calls."""

    def __init__(self) -> None:
        self.offices: list[dict[str, str]] = [OFFICE]
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/offices")
        assert request.headers["X-Renkei-Act-As"] == "owner@example.jp"
        self.calls += 1
        return httpx.Response(200, content=json.dumps(self.offices))


def member() -> SlackMember:
    return SlackMember("T1", "U1", "owner@example.jp", "ja", None, None, START)


@pytest.fixture
def now() -> list[dt.datetime]:
    return [START]


def members_over(backend: Backend, now: list[dt.datetime]) -> Members:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(backend.handle), base_url="http://renkei/api/v1"
    )
    return Members(SqlSlackStore(async_sessionmaker(), clock=lambda: now[0]), http)


async def test_offices_are_asked_once_a_minute(now: list[dt.datetime]) -> None:
    backend = Backend()
    members = members_over(backend, now)
    first = await members.offices(member())
    again = await members.offices(member())
    assert [o.name for o in first] == [o.name for o in again] == ["渋谷店"]
    assert backend.calls == 1
    assert len(await members.offices(member(), fresh=True)) == 1
    assert backend.calls == 2
    now[0] = START + OFFICES_FRESH_FOR + dt.timedelta(seconds=1)
    await members.offices(member())
    assert backend.calls == 3


async def test_not_a_member_is_never_remembered(now: list[dt.datetime]) -> None:
    backend = Backend()
    backend.offices = []
    members = members_over(backend, now)
    with pytest.raises(NotAMember):
        await members.offices(member())
    backend.offices = [OFFICE]  # invited a moment later: recognised at once
    assert len(await members.offices(member())) == 1
    assert backend.calls == 2


async def test_a_known_locale_is_answered_without_the_database(now: list[dt.datetime]) -> None:
    # The store here has no database at all: asking it would fail the ack.
    members = members_over(Backend(), now)
    english = SlackMember("T1", "U2", "staff@example.jp", "en", None, None, START)
    members._remember_locale(english)
    assert await members.cached_locale("T1", "U2") == "en"
