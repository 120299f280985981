"""two-way handoffs: a handoff's state, its messages, Slack replies in a thread

Revision ID: 0018_handoff_threads
Revises: 0017_procrastinate
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_handoff_threads"
down_revision = "0017_procrastinate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=16), server_default="open", nullable=False)
        )
        batch.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_handoffs_status", ["status", "created_at"], unique=False)
    # A handoff made before this revision owned no conversation and waits for nobody.
    op.execute("UPDATE handoffs SET status = 'resolved', resolved_at = created_at")
    op.create_table(
        "handoff_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("handoff_id", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"], name=op.f("fk_handoff_messages_handoff_id_handoffs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_messages")),
    )
    with op.batch_alter_table("handoff_messages") as batch:
        batch.create_index("ix_handoff_messages_handoff", ["handoff_id", "id"], unique=False)
        batch.create_index("ix_handoff_messages_unrouted", ["routed_at", "id"], unique=False)
    with op.batch_alter_table("slack_notifications") as batch:
        batch.add_column(sa.Column("thread_ts", sa.String(length=40), nullable=True))
        batch.create_index(
            "ix_slack_notifications_message", ["channel_id", "message_ts"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("slack_notifications") as batch:
        batch.drop_index("ix_slack_notifications_message")
        batch.drop_column("thread_ts")
    with op.batch_alter_table("handoff_messages") as batch:
        batch.drop_index("ix_handoff_messages_unrouted")
        batch.drop_index("ix_handoff_messages_handoff")
    op.drop_table("handoff_messages")
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_index("ix_handoffs_status")
        batch.drop_column("resolved_at")
        batch.drop_column("status")
