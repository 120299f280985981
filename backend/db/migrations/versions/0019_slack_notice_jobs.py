"""Slack messages and (on SQLite) outbox rows are jobs: the lock-key index of renkei's
jobs, and a job for each message or row still waiting

Until this revision every process polled ``slack_notifications`` for due messages, and
the embedded runner polled the outbox. Now a message is queued with its channel's
``slack_notice`` job, which posts the channel's messages in order, and each outbox row
is a ``deliver_webhook`` job on both runners (on PostgreSQL it was already). What waits
at the upgrade gets its job here.

Revision ID: 0019_slack_notice_jobs
Revises: 0018_handoff_threads
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0019_slack_notice_jobs"
down_revision = "0018_handoff_threads"
branch_labels = None
depends_on = None
LOCK_KEY_LENGTH = 100  # jobs.lock_key

_WAITING = sa.text(
    "SELECT channel_id, min(next_attempt_at) AS due FROM slack_notifications "
    "WHERE status IN ('pending', 'sending') GROUP BY channel_id ORDER BY min(id)"
)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.create_index("ix_jobs_lock", ["lock_key", "id"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        _outbox_jobs(bind)
    waiting = bind.execute(_WAITING).all()
    for row in waiting:
        payload = json.dumps({"channel_id": row.channel_id})
        lock = f"slack:{row.channel_id}"
        if bind.dialect.name == "postgresql":
            bind.execute(
                sa.text(
                    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('renkei', 'slack_notice', 0, "
                    ":lock, :lock, CAST(:args AS jsonb), :at)::procrastinate_job_to_defer_v1])"
                ),
                {"lock": lock, "args": payload, "at": row.due},
            )
        else:
            bind.execute(
                sa.text(
                    "INSERT INTO jobs (kind, payload, lock_key, status, attempts, run_at, "
                    "created_at) VALUES ('slack_notice', :payload, :lock, 'queued', 0, :at, :at)"
                ),
                {"payload": payload, "lock": lock, "at": row.due},
            )


def _outbox_jobs(bind: sa.Connection) -> None:
    """The embedded runner's waiting outbox rows, each as the job ``add_event`` queues."""
    waiting = bind.execute(
        sa.text(
            "SELECT d.id, d.url, d.next_attempt_at, e.account_id, e.office_id "
            "FROM webhook_deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE d.delivered_at IS NULL ORDER BY d.id"
        )
    ).all()
    for row in waiting:
        lock = f"outbox:{row.url}|{row.account_id or row.office_id}"
        if len(lock) > LOCK_KEY_LENGTH:
            lock = "outbox:" + hashlib.sha256(lock.encode()).hexdigest()
        bind.execute(
            sa.text(
                "INSERT INTO jobs (kind, payload, lock_key, status, attempts, run_at, "
                "created_at) VALUES ('deliver_webhook', :payload, :lock, 'queued', 0, :at, :at)"
            ),
            {"payload": json.dumps({"delivery_id": int(row.id)}), "lock": lock,
             "at": row.next_attempt_at},
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_lock")
