"""The work a Slack request leaves after its ack is a job, safe before the ack leaves.

A web process that acks and then dies (SIGKILL, no goodbye) loses no reply: the
request was queued, sealed, in the transaction that noted it as seen, and whichever
process runs jobs next carries it out, once. Real `renkei serve` and `renkei worker`
processes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.conftest import ADMIN_TOKEN, OWNER, Renkei
from tests.e2e.test_slack import DM, SECRET, USER, Slack
from tests.support.cluster import Cluster, scaled_out
from tests.support.fake_slack import FakeSlack, fake_slack

HELP_WORDS = "メニューから手続きを選んで"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with fake_slack() as running:
        running.add_user(USER, OWNER)
        yield running


def queued_requests(database: str) -> list[str]:
    """The arguments of every queued ``slack_request`` job, as stored."""
    if database.startswith("sqlite"):
        path = database.split("///", 1)[1]
        with sqlite3.connect(path) as conn:
            rows = conn.execute(
                "SELECT payload FROM jobs WHERE kind = 'slack_request' AND status = 'queued'"
            ).fetchall()
        return [str(row[0]) for row in rows]
    url = database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT args::text FROM procrastinate_jobs "
            "WHERE task_name = 'slack_request' AND status = 'todo'"
        ).fetchall()
    return [str(row[0]) for row in rows]


async def test_a_web_process_killed_after_the_ack_loses_no_reply(
    database: str, tmp_path: Path, fake: FakeSlack
) -> None:
    env = {
        "RENKEI_ADMIN_TOKEN": ADMIN_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_API_URL": fake.api_url,
    }
    data_dir = tmp_path / "data"
    # One web process that runs no jobs: whatever it acks, it cannot have answered.
    with scaled_out(database, data_dir, web=1, workers=0, extra_env=env) as cluster:
        try:
            await _kill_after_ack_then_recover(cluster, database, data_dir, fake)
        except BaseException:
            print(cluster.log_tail())
            raise


async def _kill_after_ack_then_recover(
    cluster: Cluster, database: str, data_dir: Path, fake: FakeSlack
) -> None:
    token = (data_dir / "demo-token").read_text().strip()
    edge = Renkei(cluster.web[0], token, cluster.env)
    try:
        acked = await Slack(edge, fake, data_dir).dm("ヘルプ")
        assert acked.status_code == 200, acked.text
    finally:
        await edge.aclose()
    [stored] = queued_requests(database)
    assert "ヘルプ" not in stored and "sealed" in json.loads(stored)  # a secret may be in it
    assert fake.of("chat.postMessage") == []

    port = cluster.kill_web(0)
    # The next processes: on PostgreSQL a worker (and a web process for the API it calls);
    # on SQLite the web process runs the jobs itself.
    postgres = database.startswith("postgresql")
    cluster.start_web(port, jobs=not postgres)
    if postgres:
        cluster.start_worker()
    await fake.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == DM and HELP_WORDS in c.all_text(),
        seconds=60,
    )
    await asyncio.sleep(2)  # a second reply would have been posted by now
    replies = [c for c in fake.posts(DM) if HELP_WORDS in c.all_text()]
    assert len(replies) == 1, [c.all_text() for c in replies]
    assert queued_requests(database) == []
