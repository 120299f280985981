"""a conversation's transcript as appended lines; the step counts' log

A turn used to rewrite its conversation's whole transcript (up to 200 entries of JSON)
and upsert the step counts' shared rows. Now it appends its lines to
``conversation_transcript`` and its steps to ``flow_step_log`` (folded into
``flow_step_counts`` in batches). Stored transcripts move to lines, in order.

Revision ID: 0013_transcript_lines
Revises: 0009
Create Date: 2026-12-06 21:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013_transcript_lines"
down_revision = "0009"
branch_labels = None
depends_on = None

# The tables as this revision sees them (not the application's, which move on).
_conversations_before = sa.table(
    "conversations", sa.column("id", sa.String), sa.column("transcript", sa.JSON)
)
_conversations_after = sa.table(
    "conversations", sa.column("id", sa.String), sa.column("transcript_lines", sa.Integer)
)
_lines = sa.table(
    "conversation_transcript",
    sa.column("conversation_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("line", sa.JSON),
)
_BATCH = 500  # conversations moved per round: memory stays flat on a large table


def upgrade() -> None:
    op.create_table(
        "conversation_transcript",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("line", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_transcript_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "seq", name=op.f("pk_conversation_transcript")),
    )
    op.create_table(
        "flow_step_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flow", sa.String(length=40), nullable=False),
        sa.Column("step", sa.String(length=60), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_step_log")),
    )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("transcript_lines", sa.Integer(), server_default="0", nullable=False)
        )
    _move_transcripts_to_lines()
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("transcript")


def _move_transcripts_to_lines() -> None:
    """Each stored transcript becomes its lines, numbered from 1 in their order."""
    connection = op.get_bind()
    after = ""
    while True:
        rows = connection.execute(
            sa.select(_conversations_before.c.id, _conversations_before.c.transcript)
            .where(_conversations_before.c.id > after)
            .order_by(_conversations_before.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        lines: list[dict[str, Any]] = []
        counts: list[dict[str, Any]] = []
        for conversation_id, transcript in rows:
            entries = list(transcript or [])
            lines.extend(
                {"conversation_id": conversation_id, "seq": seq, "line": entry}
                for seq, entry in enumerate(entries, start=1)
            )
            counts.append({"b_id": conversation_id, "b_lines": len(entries)})
        if lines:
            connection.execute(_lines.insert(), lines)
        connection.execute(
            _conversations_after.update()
            .where(_conversations_after.c.id == sa.bindparam("b_id"))
            .values(transcript_lines=sa.bindparam("b_lines")),
            counts,
        )
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("transcript", sa.JSON(), nullable=True))
    connection = op.get_bind()
    ids = [row[0] for row in connection.execute(sa.select(_conversations_before.c.id))]
    for conversation_id in ids:
        lines = connection.execute(
            sa.select(_lines.c.line)
            .where(_lines.c.conversation_id == conversation_id)
            .order_by(_lines.c.seq)
        ).scalars()
        connection.execute(
            _conversations_before.update()
            .where(_conversations_before.c.id == conversation_id)
            .values(transcript=list(lines)[-200:])
        )
    with op.batch_alter_table("conversations") as batch:
        batch.alter_column("transcript", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("transcript_lines")
    _fold_step_log(connection)
    op.drop_table("flow_step_log")
    op.drop_table("conversation_transcript")


def _fold_step_log(connection: sa.Connection) -> None:
    """Steps still in the log go into the counts before the log goes."""
    log = sa.table(
        "flow_step_log",
        *(sa.column(n) for n in ("flow", "step", "entered", "completed", "abandoned")),
    )
    counts = sa.table(
        "flow_step_counts",
        *(sa.column(n) for n in ("flow", "step", "entered", "completed", "abandoned")),
    )
    fields = ("entered", "completed", "abandoned")
    summed = connection.execute(
        sa.select(log.c.flow, log.c.step, *(sa.func.sum(log.c[f]) for f in fields)).group_by(
            log.c.flow, log.c.step
        )
    ).all()
    for flow, step, *added in summed:
        where = (counts.c.flow == flow) & (counts.c.step == step)
        updated = connection.execute(
            counts.update()
            .where(where)
            .values({f: counts.c[f] + int(n) for f, n in zip(fields, added, strict=True)})
        )
        if updated.rowcount == 0:
            connection.execute(
                counts.insert().values(
                    flow=flow, step=step, **{f: int(n) for f, n in zip(fields, added, strict=True)}
                )
            )
