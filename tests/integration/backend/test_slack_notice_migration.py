"""Revision 0019 on a database from before it: a channel with Slack messages still
waiting, and on SQLite an outbox row still to deliver, get the job that now carries
them out."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from backend.db.engine import make_engine, migrate
from backend.jobs.distributed import ProcrastinateJobs
from tests.support.databases import downgrade_to

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


async def test_what_waited_before_the_upgrade_gets_its_job(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to, "0018_handoff_threads")
            for n, status in enumerate(("pending", "sent", "sending")):
                await connection.execute(
                    sa.text(
                        "INSERT INTO slack_notifications (event_id, team_id, channel_id, text,"
                        " blocks, status, attempts, next_attempt_at, created_at)"
                        " VALUES (:e, 'T1', 'C1', 'm', '[]', :s, 0, :t, :t)"
                    ),
                    {"e": f"evt-{n}", "s": status, "t": NOW},
                )
            await connection.execute(
                sa.text(
                    "INSERT INTO events (id, type, payload, account_id, created_at)"
                    " VALUES ('evt-a', 'sync.completed', '{}', 'acc1', :t)"
                ),
                {"t": NOW},
            )
            for url_, delivered in (("http://h/1", None), ("http://h/2", NOW)):
                await connection.execute(
                    sa.text(
                        "INSERT INTO webhook_deliveries (event_id, url, attempts,"
                        " next_attempt_at, delivered_at) VALUES ('evt-a', :u, 0, :t, :d)"
                    ),
                    {"u": url_, "t": NOW, "d": delivered},
                )
        await migrate(engine)
        if engine.dialect.name == "postgresql":
            jobs = ProcrastinateJobs(url)
            await jobs.open()
            try:
                listed = await jobs.app.job_manager.list_jobs_async()
            finally:
                await jobs.close()
            found = [
                (j.task_name, j.lock, dict(j.task_kwargs))
                for j in sorted(listed, key=lambda job: job.id or 0)
            ]
            # The outbox rows had their Procrastinate tasks already.
            assert found == [("slack_notice", "slack:C1", {"channel_id": "C1"})]
        else:
            async with engine.connect() as connection:
                rows = (
                    await connection.execute(
                        sa.text("SELECT kind, lock_key, payload FROM jobs ORDER BY id")
                    )
                ).all()
            assert [(k, lock, json.loads(p)) for k, lock, p in rows] == [
                ("deliver_webhook", "outbox:http://h/1|acc1", {"delivery_id": 1}),
                ("slack_notice", "slack:C1", {"channel_id": "C1"}),
            ]
    finally:
        await engine.dispose()
