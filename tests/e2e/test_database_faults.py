"""PostgreSQL's connections cut under load: web and worker processes recover by themselves.

Every backend of the test database is terminated again and again
(``pg_terminate_backend``) while issuer webhooks arrive, syncs run on two workers and
people read through the web process. Once the cuts stop, nobody restarts anything:
``/readyz`` answers 200 again, every account is synced, and no statement is lost or
doubled.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.e2e.conftest import ADMIN_TOKEN, Renkei
from tests.e2e.test_backend_rules import BIZ, SHOP, switch
from tests.e2e.test_worker_faults import (
    FAST_WORKERS,
    STATEMENTS,
    Faulty,
    _legacy_accounts,
    never_synced,
)
from tests.support.cluster import scaled_out
from tests.support.databases import fresh_postgres_database

CUTS = 12
CUT_EVERY = 0.75  # seconds between two cuts
CARD = "amex-biz-1001"


def _cut_connections(database: str, stop: threading.Event) -> int:
    """Terminate every other connection to ``database``, ``CUTS`` times; how many died."""
    url = database.replace("postgresql+psycopg://", "postgresql://")
    name = url.rsplit("/", 1)[1]
    killed = 0
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(CUTS):
            if stop.wait(CUT_EVERY):
                break
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
            killed += sum(1 for (done,) in rows if done)
    return killed


async def _ready(renkei: Renkei, seconds: float) -> bool:
    async with httpx.AsyncClient(base_url=renkei.base_url, timeout=5) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    return False


async def test_connections_cut_under_load_everything_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**FAST_WORKERS, "RENKEI_ADMIN_TOKEN": ADMIN_TOKEN}
    with (
        fresh_postgres_database() as database,
        scaled_out(database, data_dir, web=1, workers=0, extra_env=env) as cluster,
    ):
        token = (data_dir / "demo-token").read_text().strip()
        renkei = Renkei(cluster.web[0], token, cluster.env)
        faulty = Faulty(cluster, renkei, database)
        try:
            started = time.monotonic()
            # One account on the issuer's API (its webhooks), many by ID and password.
            biz = await renkei.account(SHOP, BIZ)
            await renkei.consent(await switch(renkei, biz["id"]), cards=[CARD])
            legacy = await _legacy_accounts(faulty)
            await renkei.control(
                "amex",
                "/faults",
                {"path": "/legacy/statements", "kind": "slow", "delay": 0.3, "times": 10_000},
            )
            for _ in range(2):
                cluster.start_worker()

            stop = threading.Event()
            cutter = asyncio.create_task(asyncio.to_thread(_cut_connections, database, stop))
            issuer_count = 0
            answers: list[tuple[int, dict[str, Any]]] = []
            statements = 45  # more than the demo card holds: each call adds
            while not cutter.done():
                # New statements at the issuer: its signed webhook reaches renkei.
                statements += 3
                answer = await renkei.control(
                    "amex", f"/cards/{CARD}/statements", {"count": statements, "pending": 0}
                )
                issuer_count = int(answer["count"])
                # People keep reading: a cut connection is a 503 to ask again, never a 500.
                read = await renkei.api.get(f"/accounts/{biz['id']}")
                answers.append((read.status_code, read.json()))
                await asyncio.sleep(0.3)
            killed = await cutter
            assert killed > CUTS, killed  # the cuts hit web and worker connections
            for status, body in answers:
                assert status in (200, 503), (status, body)
                if status == 503:
                    assert body["error"]["code"] == "database_unavailable", body
            web_log = next(cluster.logs.glob("*-web-*.log")).read_text(errors="replace")
            assert "unexpected error answering" not in web_log  # webhooks got 503s, too

            # Nobody restarts anything.
            assert await _ready(renkei, 30), "/readyz never answered 200 again"
            assert all(p.poll() is None for p in [*cluster.workers, *cluster.web_processes])
            unsynced = await never_synced(renkei, legacy, 90)
            assert not unsynced, f"never synced: {unsynced}"
            for account_id in legacy:
                rows = await renkei.statements(account_id)
                assert len(rows) == STATEMENTS, (account_id, len(rows))
                assert len({r["id"] for r in rows}) == STATEMENTS
            # The API account: a webhook lost to a cut is made good by the next one or by
            # a sync now; in the end renkei holds exactly what the issuer has.
            synced = await renkei.sync_now(biz["id"])
            assert synced.status_code == 200, synced.text
            rows = await renkei.statements(biz["id"])
            assert len({r["id"] for r in rows}) == len(rows)
            assert len(rows) == issuer_count, (len(rows), issuer_count)
            print(
                f"{killed} connections cut in {CUTS} rounds; all recovered, "
                f"test ran {time.monotonic() - started:.1f} s"
            )
        except BaseException:
            print(cluster.log_tail())
            raise
        finally:
            await renkei.aclose()
