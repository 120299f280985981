"""Workers killed with SIGKILL on PostgreSQL: nothing lost, nothing doubled, nothing stuck.

renkei runs as separate processes (`serve --no-jobs` and `renkei worker`); the issuer
answers slowly, so each sync or delivery is under way when a worker is killed. The
heartbeat, stalled-worker and lease timings are shortened so the suite stays quick;
the behaviour is the production one.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.e2e.conftest import ADMIN_TOKEN, OWNER, Renkei
from tests.e2e.test_backend_rules import SHOP
from tests.e2e.test_slack import SECRET, USER, Slack
from tests.support.cluster import Cluster, scaled_out
from tests.support.databases import fresh_postgres_database
from tests.support.fake_slack import fake_slack
from tests.support.servers import serve_asgi

ACCOUNTS = 30
STATEMENTS = 12  # per card
KILLS = 20
DOWNLOAD_SECONDS = 3.0  # each sync's statement download: kills find syncs under way
LEASE_SECONDS = 5
STALLED_SECONDS = 3
FAST_WORKERS = {
    "RENKEI_ADMIN_TOKEN": ADMIN_TOKEN,
    "RENKEI_WORKER_CONCURRENCY": "1",  # three syncs at a time: kills land in the middle
    "RENKEI_WORKER_HEARTBEAT_SECONDS": "1",
    "RENKEI_WORKER_STALLED_SECONDS": str(STALLED_SECONDS),
    "RENKEI_WORKER_RECOVER_CRON": "* * * * * */2",
    "RENKEI_SYNC_LEASE_SECONDS": str(LEASE_SECONDS),
}


@dataclass
class Faulty:
    cluster: Cluster
    renkei: Renkei
    database: str

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        url = self.database.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            return [tuple(row) for row in conn.execute(sql, args).fetchall()]


@pytest.fixture
async def faulty(tmp_path: Path) -> AsyncIterator[Faulty]:
    data_dir = tmp_path / "data"
    with (
        fresh_postgres_database() as database,
        scaled_out(database, data_dir, web=1, workers=0, extra_env=FAST_WORKERS) as cluster,
    ):
        token = (data_dir / "demo-token").read_text().strip()
        renkei = Renkei(cluster.web[0], token, cluster.env)
        try:
            yield Faulty(cluster, renkei, database)
        except BaseException:
            print(cluster.log_tail())
            raise
        finally:
            await renkei.aclose()


async def _legacy_accounts(faulty: Faulty) -> dict[str, str]:
    """``ACCOUNTS`` ID/password accounts at the simulated Amex; account id → card id."""
    renkei = faulty.renkei
    office = await renkei.office(SHOP)
    accounts: dict[str, str] = {}
    for n in range(ACCOUNTS):
        user, card = f"fault_user_{n}", f"amex-fault-{n:03d}"
        await renkei.control("amex", "/users", {"user_id": user, "password": "pass_good"})
        await renkei.control(
            "amex",
            "/cards",
            {"user_id": user, "card_id": card, "product": "amex_business", "holder_name": "T"},
        )
        await renkei.control("amex", f"/cards/{card}/statements", {"count": STATEMENTS})
        created = await renkei.api.post(
            f"/offices/{office['id']}/accounts",
            json={
                "sync_method": "legacy",
                "issuer": "amex",
                "name": f"fault {n}",
                "login_id": user,
                "password": "pass_good",
            },
        )
        assert created.status_code == 201, created.text
        accounts[created.json()["id"]] = card
    return accounts


async def never_synced(renkei: Renkei, accounts: Iterable[str], seconds: float) -> set[str]:
    """The accounts not synced and active after waiting up to ``seconds``."""
    unsynced = set(accounts)
    deadline = time.monotonic() + seconds
    while unsynced and time.monotonic() < deadline:
        for account_id in list(unsynced):
            account = await renkei.get_account(account_id)
            if account["last_synced_at"] and account["status"] == "active":
                unsynced.discard(account_id)
        await asyncio.sleep(0.5)
    return unsynced


async def test_workers_killed_during_syncs_lose_and_double_nothing(faulty: Faulty) -> None:
    renkei, cluster = faulty.renkei, faulty.cluster
    accounts = await _legacy_accounts(faulty)  # their syncs wait: no worker runs yet
    # Each statement download takes seconds: a kill finds syncs under way.
    await renkei.control(
        "amex",
        "/faults",
        {"path": "/legacy/statements", "kind": "slow", "delay": DOWNLOAD_SECONDS, "times": 10_000},
    )
    started = time.monotonic()
    for _ in range(3):
        cluster.start_worker()
    rng = random.Random(11)
    kills = 0
    while kills < KILLS:
        await asyncio.sleep(rng.uniform(0.7, 1.6))
        running, waiting = faulty.query(
            "SELECT count(*) FILTER (WHERE status = 'doing'), "
            "count(*) FILTER (WHERE status = 'todo') "
            "FROM procrastinate_jobs WHERE task_name = 'sync_account'"
        )[0]
        if not running and not waiting:
            break  # every sync finished before the kills did: said below
        if not running:
            continue
        cluster.kill_worker(rng.choice(cluster.workers))
        kills += 1
        cluster.start_worker()  # three workers again, as an orchestrator would

    assert kills == KILLS, f"the syncs were over after {kills} kills"
    unsynced = await never_synced(renkei, accounts, 240)
    elapsed = time.monotonic() - started
    print(f"{ACCOUNTS} accounts synced by 3 workers with {KILLS} SIGKILLs in {elapsed:.1f} s")
    assert not unsynced, f"never synced: {unsynced}"

    for account_id in accounts:
        rows = await renkei.statements(account_id)
        assert len(rows) == STATEMENTS, (account_id, len(rows))  # none lost, none doubled
        assert len({r["id"] for r in rows}) == STATEMENTS
    # No lock or lease outlives its timeout: no sync left running, no lease held.
    for _ in range(60):
        doing = faulty.query(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' "
            "AND task_name = 'sync_account'"
        )[0][0]
        leased = faulty.query(
            "SELECT count(*) FROM accounts WHERE sync_lease_until > now() + interval '1 second'"
        )[0][0]
        if not doing and not leased:
            break
        await asyncio.sleep(0.5)
    assert (doing, leased) == (0, 0)
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as client:
        await client.delete("/sandbox/amex/control/faults", headers=renkei.sandbox_key)


async def until(check: Callable[[], bool], seconds: float) -> None:
    for _ in range(int(seconds * 10)):
        if check():
            return
        await asyncio.sleep(0.1)


class SlowSubscriber:
    """A subscriber of renkei's webhooks that takes its time with each first delivery."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: list[str] = []  # event ids, in arrival order
        self.holding: list[str] = []  # event ids whose first delivery is not answered yet

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            event_id = request.headers.get("renkei-event-id", "")
            first = event_id not in self.received
            self.received.append(event_id)
            if first:
                self.holding.append(event_id)
                await asyncio.sleep(self.delay)  # the worker is killed meanwhile
                self.holding.remove(event_id)
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", receive, methods=["POST"])])


async def test_a_worker_killed_during_a_delivery(tmp_path: Path) -> None:
    """Every event reaches the subscriber at least once, and the assistant (renkei's own
    subscriber) says it once in the office channel."""
    # Under the sender's 10 s timeout: only the kill can make a delivery go out again.
    subscriber = SlowSubscriber(delay=8)
    data_dir = tmp_path / "data"
    with (
        serve_asgi(subscriber.app()) as hook,
        fake_slack() as fake,
        fresh_postgres_database() as database,
    ):
        fake.add_user(USER, OWNER)
        env = {
            **FAST_WORKERS,
            "RENKEI_WORKER_CONCURRENCY": "4",
            "RENKEI_WEBHOOK_URLS": f"{hook}/hook",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_API_URL": fake.api_url,
        }
        with scaled_out(database, data_dir, web=1, workers=0, extra_env=env) as cluster:
            token = (data_dir / "demo-token").read_text().strip()
            renkei = Renkei(cluster.web[0], token, cluster.env)
            try:
                slack = Slack(renkei, fake, data_dir)
                await slack.command(f"channel {SHOP}", channel="C0FAULT")
                # One job at a time, the person's Slack request first (it goes before the
                # demo's waiting syncs): every sync's notice finds the channel set.
                first = cluster.start_worker(RENKEI_WORKER_CONCURRENCY="1")
                await slack.reply("同期通知先にしました", channel="C0FAULT")
                # Then a worker that takes four jobs at once: a delivery is held while
                # the syncs go on. The first one goes as a dead worker would.
                cluster.kill_worker(first)
                worker = cluster.start_worker()
                await until(lambda: bool(subscriber.holding), 60)
                assert subscriber.holding, "no delivery reached the subscriber"
                cut = subscriber.holding[0]
                cluster.kill_worker(worker)  # while the subscriber holds that delivery
                cluster.start_worker()
                await renkei.wait_all_synced()  # the demo's first syncs, all of them

                events = {
                    e["id"]: e
                    for office in (await renkei.api.get("/offices")).json()
                    for e in (
                        await renkei.api.get(
                            "/events", params={"office_id": office["id"], "limit": 200}
                        )
                    ).json()
                }
                await until(lambda: set(events) <= set(subscriber.received), 120)
                assert set(events) <= set(subscriber.received)  # at least once each
                await until(lambda: subscriber.received.count(cut) > 1, 60)
                assert subscriber.received.count(cut) > 1, "the cut delivery was not sent again"
                # The assistant handled each event once: one notice per sync that added.
                completed = [
                    e
                    for e in events.values()
                    if e["type"] == "sync.completed" and e["office_id"] and e["payload"]["added"]
                ]
                shop = (await renkei.office(SHOP))["id"]
                expected = [e for e in completed if e["office_id"] == shop]
                assert expected
                wanted = [f"新しい明細は {e['payload']['added']} 件" for e in expected]

                def all_said() -> bool:
                    posts = [c.all_text() for c in fake.posts("C0FAULT")]
                    return all(any(words in p for p in posts) for words in wanted)

                await until(all_said, 60)
                await asyncio.sleep(3)  # a second notice of one event would have come by now
                posts = [c.all_text() for c in fake.posts("C0FAULT")]
                for event in expected:
                    words = f"新しい明細は {event['payload']['added']} 件"
                    said = [p for p in posts if words in p]
                    assert len(said) >= 1, (words, posts)
                notices = [p for p in posts if "新しい明細は" in p]
                assert len(notices) == len(expected), notices
            except BaseException:
                print(cluster.log_tail())
                raise
            finally:
                await renkei.aclose()
