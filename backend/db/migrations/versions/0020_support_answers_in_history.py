"""support's answers are read by conversation (a conversation's history shows them)

Revision ID: 0020_support_answers_in_history
Revises: 0019_slack_notice_jobs
Create Date: 2026-12-09 12:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0020_support_answers_in_history"
down_revision = "0019_slack_notice_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handoff_messages") as batch:
        batch.create_index(
            "ix_handoff_messages_conversation", ["conversation_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("handoff_messages") as batch:
        batch.drop_index("ix_handoff_messages_conversation")
