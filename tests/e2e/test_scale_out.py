"""renkei scaled out: 2 web processes (`serve --no-jobs`) and 3 `renkei worker` processes
on one PostgreSQL database carry an issuer's webhook through a sync to one Slack message.

Nothing is driven from inside a process: the issuer (the sandbox served by the first
web process) is moved, its signed webhook reaches renkei, a worker syncs, another
delivers the back end's event to the assistant, and the office channel shows it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.conftest import ADMIN_TOKEN, OWNER, Renkei
from tests.e2e.test_backend_rules import BIZ, SHOP, switch
from tests.e2e.test_slack import SECRET, USER, Slack
from tests.support.cluster import Cluster, scaled_out
from tests.support.databases import fresh_postgres_database
from tests.support.fake_slack import FakeSlack, fake_slack

CHANNEL = "C0SCALE"


@dataclass
class ScaledOut:
    cluster: Cluster
    public: Renkei  # the first web process: the issuers' and the browser's address
    other: Renkei  # the second web process
    slack: Slack  # Slack's requests go to the second web process
    fake: FakeSlack
    database: str

    def jobs(self, task: str) -> list[tuple[str, int]]:
        """(status, attempts) of every job of ``task``, as Procrastinate keeps them."""
        url = self.database.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT status::text, attempts FROM procrastinate_jobs WHERE task_name = %s",
                (task,),
            ).fetchall()
        return [(str(status), int(attempts)) for status, attempts in rows]


@pytest.fixture
async def scaled(tmp_path: Path) -> AsyncIterator[ScaledOut]:
    data_dir = tmp_path / "data"
    with fresh_postgres_database() as database, fake_slack() as fake:
        fake.add_user(USER, OWNER)
        env = {
            "RENKEI_ADMIN_TOKEN": ADMIN_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_API_URL": fake.api_url,
        }
        with scaled_out(database, data_dir, web=2, workers=3, extra_env=env) as cluster:
            token = (data_dir / "demo-token").read_text().strip()
            public = Renkei(cluster.web[0], token, cluster.env)
            other = Renkei(cluster.web[1], token, cluster.env)
            try:
                await other.wait_all_synced()  # the demo's first syncs, by the workers
                yield ScaledOut(
                    cluster, public, other, Slack(other, fake, data_dir), fake, database
                )
            except BaseException:
                print(cluster.log_tail())
                raise
            finally:
                await public.aclose()
                await other.aclose()


async def test_webhook_sync_and_slack_message_exactly_once_across_processes(
    scaled: ScaledOut,
) -> None:
    slack, public, other = scaled.slack, scaled.public, scaled.other
    await slack.command(f"channel {SHOP}", channel=CHANNEL)
    await slack.reply("同期通知先にしました", channel=CHANNEL)

    # Switched to API through the second web process, consented at the issuer.
    account = await other.account(SHOP, BIZ)
    await public.consent(await switch(other, account["id"]), cards=["amex-biz-1001"])
    linked = await other.wait_synced(account["id"], since=account["last_synced_at"])
    assert linked["sync_method"] == "api"
    before = len(await other.statements(account["id"]))
    known = {e["id"] for e in await other.events(account["id"])}

    # New statements at the issuer: its webhook, a worker's sync, the event, Slack.
    await public.control("amex", "/cards/amex-biz-1001/statements", {"count": 45, "pending": 0})
    completed: list[dict[str, Any]] = []
    for _ in range(600):
        completed = [
            e
            for e in await other.events(account["id"])
            if e["type"] == "sync.completed" and e["payload"]["added"] and e["id"] not in known
        ]
        if completed:
            break
        await asyncio.sleep(0.1)
    assert len(completed) == 1, completed  # the webhook's one sync brought them
    added = completed[0]["payload"]["added"]
    words = f"新しい明細は {added} 件"
    said = await scaled.fake.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == CHANNEL and words in c.all_text(),
        seconds=60,
    )
    assert BIZ in said.all_text()
    synced = await other.wait_synced(account["id"], since=linked["last_synced_at"])
    assert synced["status"] == "active"
    after = await other.statements(account["id"])
    assert added > 0 and len(after) == before + added
    assert len({s["id"] for s in after}) == len(after)  # nothing doubled

    await asyncio.sleep(3)  # a doubled message would have been posted by now
    posts = [c for c in scaled.fake.posts(CHANNEL) if words in c.all_text()]
    assert len(posts) == 1, [c.all_text() for c in posts]
    # Every sync and every delivery ran on a worker and finished; none is left behind.
    for task in ("sync_account", "deliver_webhook"):
        statuses = {status for status, _ in scaled.jobs(task)}
        assert statuses == {"succeeded"}, (task, scaled.jobs(task))
