"""Figure: issuer webhooks → sync → Slack messages, messages per second and exactly once.

renkei runs embedded with its job runner and Slack on (the Web API pointed at the
fake Slack in a child process); the office's Slack channel is set, and Amex cards are
linked to accounts of that office. Each event is the sandbox issuer getting one new
statement on a card: it sends its signed ``statements.available`` webhook, renkei
queues a sync, the sync completes with one statement added, its event reaches the
Slack notifier, which posts to the office channel. Events go in rounds, one per card
at a time (syncs of one account coalesce by design, so a card's next event waits for
its message). Goal: ≥ 500 messages/s, and exactly one message per event.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.databases import sqlite_url
from bench.embedded import Embedded, embedded_renkei
from bench.fake_slack import TEAM_ID, posts, settled_posts, wait_posts
from bench.result import FigureResult, Row
from bench.server import Served, child_server

NAME = "notifications"
GOAL_RATE = 500.0
CHANNEL = "C0BENCHOFFICE"
ROUND_TIMEOUT = 120.0


class NotifierMissing(Exception):
    """renkei did not switch its Slack notifier on."""


async def _set_up(renkei: Embedded, cards: int) -> list[str]:
    if getattr(renkei.app.state, "slack_notifier", None) is None:
        raise NotifierMissing("renkei started without its Slack notifier")
    from backend.db.slack_store import SqlSlackStore

    office_id = await renkei.shop_office_id()
    store = SqlSlackStore(renkei.runtime.sessions, renkei.services.clock)
    await store.set_office_channel(office_id, TEAM_ID, CHANNEL, set_by="U0BENCH")
    refs = [f"amex-bench-notify-{n}" for n in range(cards)]
    for ref in refs:
        await renkei.link_card(ref, 0)  # nothing to say on the first sync
    return refs


async def measure(fake_url: str, data_dir: Path, cards: int, rounds: int) -> tuple[float, int]:
    """(messages per second, messages posted) for ``cards × rounds`` events."""
    slack = {
        "slack_signing_secret": "bench-slack-signing-secret",
        "slack_bot_token": "xoxb-bench",
        "slack_api_url": f"{fake_url}/api/",
    }
    url = sqlite_url(data_dir.parent / "notifications.sqlite3")
    async with (
        embedded_renkei(url, data_dir, jobs=True, **slack) as renkei,
        httpx.AsyncClient(base_url=fake_url, timeout=10) as fake,
    ):
        refs = await _set_up(renkei, cards)
        # The first syncs settle, and with them the demo office's own notices (a card
        # that appeared under a demo ID): only the events below are counted.
        before = await settled_posts(fake, CHANNEL)
        started = time.perf_counter()
        for round_number in range(1, rounds + 1):
            await asyncio.gather(
                *(
                    renkei.control(f"/cards/{ref}/statements", {"count": round_number})
                    for ref in refs
                )
            )
            expected = before + round_number * cards
            if await wait_posts(fake, CHANNEL, expected, ROUND_TIMEOUT) < expected:
                break
        elapsed = time.perf_counter() - started
        posted = await posts(fake, CHANNEL) - before
        await asyncio.sleep(1.5)  # anything posted twice would show now
        posted_in_the_end = await posts(fake, CHANNEL) - before
    return posted / elapsed, posted_in_the_end


def run(quick: bool) -> FigureResult:
    cards, rounds = (10, 5) if quick else (50, 100)
    events = cards * rounds
    rows = [
        Row(
            f"{NAME}, messages per second",
            "messages/s",
            goal=f"≥ {GOAL_RATE:.0f}/s",
            goal_bound=GOAL_RATE,
            goal_on_value=True,
            chart="throughput",
        ),
        Row(
            f"{NAME}, messages posted for {events:,} events",
            "messages",
            goal=f"exactly {events:,}",
            goal_bound=float(events),
            better="equal",
            goal_on_value=True,
        ),
    ]
    result = FigureResult(NAME, rows)
    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as folder, ExitStack() as stack:
        try:
            fake: Served = stack.enter_context(
                child_server(["bench.fake_slack"], "/stats", Path(folder))
            )
            rate, posted = asyncio.run(measure(fake.base_url, Path(folder) / "data", cards, rounds))
        except (NotifierMissing, ImportError) as exc:
            for row in rows:
                row.unavailable = str(exc).splitlines()[0][:200]
            return result
    rows[0].value = rate
    rows[1].value = float(posted)
    result.notes.append(
        f"{events:,} events: {cards} cards × {rounds} rounds, one new statement per card "
        "and round; the messages/s run from the first webhook to the last message."
    )
    return result
