"""slack: requests seen, users, office channels, notifications, OAuth installations and states

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "slack_requests_seen",
        sa.Column("key", sa.String(length=200), nullable=False),
        _ts("seen_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_requests_seen")),
    )
    op.create_index("ix_slack_requests_seen_at", "slack_requests_seen", ["seen_at"])
    op.create_table(
        "slack_users",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("dm_channel_id", sa.String(length=32), nullable=True),
        sa.Column("conversation_id", sa.String(length=32), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_slack_users")),
    )
    op.create_index("ix_slack_users_conversation", "slack_users", ["conversation_id"])
    op.create_table(
        "slack_office_channels",
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("set_by", sa.String(length=320), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("office_id", name=op.f("pk_slack_office_channels")),
    )
    op.create_table(
        "slack_notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=120), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _ts("next_attempt_at"),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("message_ts", sa.String(length=40), nullable=True),
        _ts("created_at"),
        _ts("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_notifications")),
        sa.UniqueConstraint(
            "event_id", "channel_id", name="uq_slack_notifications_event_channel"
        ),
    )
    op.create_index(
        "ix_slack_notifications_due", "slack_notifications", ["status", "next_attempt_at"]
    )
    op.create_table(
        "slack_installations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("is_enterprise_install", sa.Integer(), server_default="0", nullable=False),
        sa.Column("has_bot", sa.Integer(), server_default="0", nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        _ts("installed_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_installations")),
    )
    op.create_index(
        "ix_slack_installations_team",
        "slack_installations",
        ["client_id", "enterprise_id", "team_id", "installed_at"],
    )
    op.create_table(
        "slack_oauth_states",
        sa.Column("state", sa.String(length=200), nullable=False),
        _ts("expire_at"),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_slack_oauth_states")),
    )


def downgrade() -> None:
    op.drop_table("slack_oauth_states")
    op.drop_index("ix_slack_installations_team", table_name="slack_installations")
    op.drop_table("slack_installations")
    op.drop_index("ix_slack_notifications_due", table_name="slack_notifications")
    op.drop_table("slack_notifications")
    op.drop_table("slack_office_channels")
    op.drop_index("ix_slack_users_conversation", table_name="slack_users")
    op.drop_table("slack_users")
    op.drop_index("ix_slack_requests_seen_at", table_name="slack_requests_seen")
    op.drop_table("slack_requests_seen")
