"""SQLAlchemy tables, mapped imperatively onto the domain's dataclasses.

R5 and R6 are backed by partial unique indexes, so that two concurrent attempts to
link the same Amex card (or the same MyJCB ID) give exactly one link whatever the
interleaving: the loser's INSERT fails at commit.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import (
    Enum as SAEnum,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator

from backend.domain import model

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
mapper_registry = registry(metadata=metadata)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Sealed(TypeDecorator[bytes]):
    """A secret encrypted with renkei's keys (the service layer seals and opens it).

    Declaring a column with this type is all it takes to put it in key rotation:
    ``renkei keys rotate`` re-encrypts every column of this type (``sealed_columns``).
    """

    impl = LargeBinary
    cache_ok = True


def sealed_columns() -> list[tuple[Table, Column[Any]]]:
    """Every column holding a secret at rest, found by its type: the rotation's registry."""
    found: list[tuple[Table, Column[Any]]] = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Sealed):
                found.append((table, column))
    return found


def _ts(name: str, nullable: bool = False) -> Column[dt.datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


def _enum(cls: type[StrEnum]) -> SAEnum:
    # Stored as plain text (no native enum type), loaded back as the domain's enum.
    return SAEnum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


offices = Table(
    "offices",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    _ts("created_at"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("office_id", String(32), ForeignKey("offices.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("role", _enum(model.Role), nullable=False),
    UniqueConstraint("office_id", "email"),
    Index("ix_memberships_email", "email"),
)

# Pending only: accepting turns one into a membership, declining or cancelling deletes it.
invitations = Table(
    "invitations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("office_id", String(32), ForeignKey("offices.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("role", _enum(model.Role), nullable=False),
    Column("invited_by", String(320), nullable=False),
    _ts("created_at"),
    UniqueConstraint("office_id", "email"),
    Index("ix_invitations_email", "email"),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("office_id", String(32), ForeignKey("offices.id"), nullable=False),
    Column("issuer", _enum(model.Issuer), nullable=False),
    _ts("released_at"),
    UniqueConstraint("office_id", "issuer"),
)

cards = Table(
    "cards",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("issuer", _enum(model.Issuer), nullable=False),
    Column("card_ref", String(100), nullable=False),
    Column("product", String(64), nullable=False),
    Column("masked_number", String(40), nullable=False),
    Column("holder_name", String(200), nullable=False),
    Column("role", _enum(model.CardRole), nullable=False),
    Column("basic_card_id", String(32), ForeignKey("cards.id"), nullable=True),
    Column("successor_id", String(32), ForeignKey("cards.id"), nullable=True),
    # Set only on a card an office declared for its upload account: its own record.
    Column("office_id", String(32), ForeignKey("offices.id"), nullable=True),
    # One issuer's card per issuer id, shared by every office that syncs it (R14) ...
    Index(
        "uq_cards_issuer_card",
        "issuer",
        "card_ref",
        unique=True,
        sqlite_where=text("office_id IS NULL"),
        postgresql_where=text("office_id IS NULL"),
    ),
    # ... and one declaration per office and card, which no other office ever sees.
    Index(
        "uq_cards_declared",
        "office_id",
        "issuer",
        "card_ref",
        unique=True,
        sqlite_where=text("office_id IS NOT NULL"),
        postgresql_where=text("office_id IS NOT NULL"),
    ),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("office_id", String(32), ForeignKey("offices.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("issuer", _enum(model.Issuer), nullable=False),
    Column("card_id", String(32), ForeignKey("cards.id"), nullable=True),
    Column("sync_method", _enum(model.SyncMethod), nullable=False),
    Column("status", _enum(model.AccountStatus), nullable=False),
    Column("legacy_login_id", Sealed, nullable=True),
    Column("legacy_password", Sealed, nullable=True),
    Column("sync_cursor", Text, nullable=True),
    _ts("sync_lease_until", nullable=True),
    _ts("last_synced_at", nullable=True),
    Column("last_error", String(64), nullable=True),
    _ts("created_at"),
    _ts("deleted_at", nullable=True),
    Index("ix_accounts_office", "office_id"),
    Index("ix_accounts_card", "card_id"),
)

api_links = Table(
    "api_links",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.id"), nullable=False),
    Column("office_id", String(32), ForeignKey("offices.id"), nullable=False),
    Column("issuer", _enum(model.Issuer), nullable=False),
    Column("card_id", String(32), ForeignKey("cards.id"), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("tokens", Sealed, nullable=False),
    Column("status", _enum(model.LinkStatus), nullable=False),
    _ts("expires_at", nullable=True),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
    Column("issuer_grant_id", String(100), nullable=True),
    _ts("consent_expires_at", nullable=True),
    Column("consent_warned_days", Integer, nullable=True),
    # R5/R14: at most one active API link per Amex card, across every office.
    Index(
        "uq_api_links_active_amex_card",
        "card_id",
        unique=True,
        sqlite_where=text("issuer = 'amex' AND status = 'active'"),
        postgresql_where=text("issuer = 'amex' AND status = 'active'"),
    ),
    # R6: one account per MyJCB ID.
    Index(
        "uq_api_links_active_jcb_subject",
        "subject",
        unique=True,
        sqlite_where=text("issuer = 'jcb' AND status = 'active'"),
        postgresql_where=text("issuer = 'jcb' AND status = 'active'"),
    ),
    # One live link per account: re-authentication replaces it in place.
    Index(
        "uq_api_links_active_account",
        "account_id",
        unique=True,
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
)

pending_authorizations = Table(
    "pending_authorizations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("state", String(128), nullable=False, unique=True),
    Column("account_id", String(32), ForeignKey("accounts.id"), nullable=False),
    Column("office_id", String(32), ForeignKey("offices.id"), nullable=False),
    Column("issuer", _enum(model.Issuer), nullable=False),
    Column("purpose", _enum(model.AuthorizationPurpose), nullable=False),
    Column("code_verifier", Sealed, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("requested_by", String(320), nullable=False),
    _ts("expires_at"),
    Column("return_url", Text, nullable=True),
    _ts("used_at", nullable=True),
    _ts("created_at"),
    Column("requested_by_admin", Boolean, nullable=False, default=False),
    Column("issuer_url", Text, nullable=True),
    Column("expected_iss", Text, nullable=True),
    Column("sign_in_code_hash", String(64), nullable=True),
    _ts("sign_in_code_expires_at", nullable=True),
    Column("sign_in_attempts", Integer, nullable=False, default=0),
    _ts("sign_in_used_at", nullable=True),
    Column("browser_binding", String(64), nullable=True),
)

statements = Table(
    "statements",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.id"), nullable=False),
    Column("card_id", String(32), ForeignKey("cards.id"), nullable=False),
    Column("issuer_txn_id", String(100), nullable=True),
    Column("use_date", Date, nullable=False),
    Column("posted_date", Date, nullable=True),
    Column("merchant", String(300), nullable=False),
    Column("amount_jpy", Integer, nullable=False),
    Column("foreign_amount", String(32), nullable=True),
    Column("foreign_currency", String(3), nullable=True),
    Column("status", _enum(model.StatementStatus), nullable=False),
    Column("source", _enum(model.StatementSource), nullable=False),
    Column("holder_name", String(200), nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    # An issuer transaction lands once per account, however often it is fetched.
    UniqueConstraint("account_id", "issuer_txn_id"),
    Index("ix_statements_natural", "account_id", "card_id", "use_date", "amount_jpy"),
    Index("ix_statements_account_date", "account_id", "use_date", "id"),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.id"), nullable=False),
    Column("method", _enum(model.SyncMethod), nullable=False),
    Column("status", String(16), nullable=False),
    Column("added", Integer, nullable=False),
    Column("modified", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("error_code", String(64), nullable=True),
    _ts("started_at"),
    _ts("finished_at", nullable=True),
    Index("ix_sync_runs_account", "account_id", "started_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("office_id", String(32), nullable=True),
    Column("account_id", String(32), nullable=True),
    _ts("created_at"),
    Index("ix_events_office_created", "office_id", "created_at"),
)

# The outbox: one row per (event, subscriber), written in the event's transaction.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), ForeignKey("events.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    _ts("next_attempt_at"),
    _ts("delivered_at", nullable=True),
    Column("last_error", String(200), nullable=True),
    Index("ix_webhook_deliveries_due", "delivered_at", "next_attempt_at"),
)

# Issuer webhooks already handled: a replayed event is acknowledged and ignored.
issuer_webhook_receipts = Table(
    "issuer_webhook_receipts",
    metadata,
    Column("issuer", String(8), primary_key=True),
    Column("event_id", String(100), primary_key=True),
    _ts("received_at"),
)

# Each sync run's outcome for its issuer: the window issuer health is judged from
# (backend/domain/issuer_health.py), shared by every process.
issuer_sync_outcomes = Table(
    "issuer_sync_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issuer", String(8), nullable=False),
    Column("account_id", String(32), nullable=True),
    Column("kind", String(16), nullable=False),  # success | issuer_failure | account_failure
    Column("error_code", String(64), nullable=True),
    _ts("at"),
    Index("ix_issuer_sync_outcomes_issuer_at", "issuer", "at"),
)

# The issuer's cards each account's ID was reported with: a card no account of the office
# has seen, reported after the account's first report, is offered (card.discovered).
account_seen_cards = Table(
    "account_seen_cards",
    metadata,
    Column("account_id", String(32), ForeignKey("accounts.id"), primary_key=True),
    Column("card_id", String(32), ForeignKey("cards.id"), primary_key=True),
    Column("office_id", String(32), ForeignKey("offices.id"), nullable=False),
    _ts("seen_at"),
    Index("ix_account_seen_cards_office_card", "office_id", "card_id"),
)

# While an issuer is down, one probe sync at a time: claimed by compare-and-set.
issuer_probes = Table(
    "issuer_probes",
    metadata,
    Column("issuer", String(8), primary_key=True),
    _ts("claimed_until"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("lock_key", String(100), nullable=True),
    Column("status", String(16), nullable=False),  # queued | running | done | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    _ts("run_at"),
    _ts("locked_until", nullable=True),
    Column("last_error", String(200), nullable=True),
    _ts("created_at"),
    Index("ix_jobs_due", "status", "run_at"),
    # A lock key's jobs run in the order queued: the claim looks for earlier ones.
    Index("ix_jobs_lock", "lock_key", "id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    # What a member names to revoke a token: never the token, never its hash.
    Column("id", String(32), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("name", String(100), nullable=False),
    _ts("created_at"),
    _ts("expires_at", nullable=True),
    _ts("revoked_at", nullable=True),
    Index("ix_api_tokens_email", "email"),
)


# Conversations of the assistant: any process takes the next turn (optimistic locking).
conversations = Table(
    "conversations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_email", String(320), nullable=False),
    Column("locale", String(8), nullable=False),
    Column("office_id", String(32), nullable=True),
    Column("flow", String(40), nullable=True),
    Column("state", String(60), nullable=False),
    Column("slots", JSON, nullable=False),
    Column("history", JSON, nullable=False),
    Column("replies", JSON, nullable=False),
    # Lines ever logged (the seq of the last one): the next line's seq, without a read.
    Column("transcript_lines", Integer, nullable=False, server_default="0"),
    Column("waiting_for", String(80), nullable=True),
    Column("version", Integer, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    Index("ix_conversations_waiting", "waiting_for"),
    Index("ix_conversations_flow_updated", "flow", "updated_at"),
)

# A conversation's transcript, one row a line: a turn appends its lines, never rewrites.
conversation_transcript = Table(
    "conversation_transcript",
    metadata,
    Column(
        "conversation_id",
        String(32),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("line", JSON, nullable=False),
)

# Steps counted by turns, not yet added into flow_step_counts: a turn only inserts here
# (no hot row every turn updates), and the log is folded into the counts in batches.
flow_step_log = Table(
    "flow_step_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow", String(40), nullable=False),
    Column("step", String(60), nullable=False),
    Column("entered", Integer, nullable=False),
    Column("completed", Integer, nullable=False),
    Column("abandoned", Integer, nullable=False),
)

flow_step_counts = Table(
    "flow_step_counts",
    metadata,
    Column("flow", String(40), primary_key=True),
    Column("step", String(60), primary_key=True),
    Column("entered", Integer, nullable=False, server_default="0"),
    Column("completed", Integer, nullable=False, server_default="0"),
    Column("abandoned", Integer, nullable=False, server_default="0"),
)

handoffs = Table(
    "handoffs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("conversation_id", String(32), ForeignKey("conversations.id"), nullable=False),
    Column("user_email", String(320), nullable=False),
    Column("office_id", String(32), nullable=True),
    Column("transcript", JSON, nullable=False),
    Column("account_state", JSON, nullable=True),
    _ts("created_at"),
    _ts("routed_at", nullable=True),
    # open → answered → resolved (statemachine.handoff.HandoffStatus); the support page
    # lists what is not resolved.
    Column("status", String(16), nullable=False, server_default="open"),
    _ts("resolved_at", nullable=True),
    Index("ix_handoffs_unrouted", "routed_at", "created_at"),
    Index("ix_handoffs_status", "status", "created_at"),
)

# What was said in a handoff after it started: the person's messages for support,
# support's answers for the person, and its end. ``routed_at``: passed on by Slack's side.
handoff_messages = Table(
    "handoff_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("handoff_id", String(32), ForeignKey("handoffs.id"), nullable=False),
    Column("conversation_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("author", String(320), nullable=False),
    Column("via", String(16), nullable=False),
    _ts("at"),
    _ts("routed_at", nullable=True),
    Index("ix_handoff_messages_handoff", "handoff_id", "id"),
    Index("ix_handoff_messages_unrouted", "routed_at", "id"),
    # A conversation's history shows support's answers among its lines.
    Index("ix_handoff_messages_conversation", "conversation_id", "id"),
)


def map_domain() -> None:
    """Map the domain's dataclasses onto the tables (idempotent)."""
    if getattr(map_domain, "_done", False):
        return
    for cls, table in (
        (model.Office, offices),
        (model.Membership, memberships),
        (model.Invitation, invitations),
        (model.Rollout, rollouts),
        (model.Card, cards),
        (model.Account, accounts),
        (model.ApiLink, api_links),
        (model.PendingAuthorization, pending_authorizations),
        (model.Statement, statements),
        (model.SyncRun, sync_runs),
        (model.Event, events),
    ):
        mapper_registry.map_imperatively(cls, table)
    map_domain._done = True  # type: ignore[attr-defined]


# Slack: requests already handled (Slack retries after 3 s), across every process.
slack_requests_seen = Table(
    "slack_requests_seen",
    metadata,
    Column("key", String(200), primary_key=True),
    _ts("seen_at"),
    Index("ix_slack_requests_seen_at", "seen_at"),
)

# Slack users mapped to renkei members by their profile email (users.info).
slack_users = Table(
    "slack_users",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("user_id", String(32), primary_key=True),
    Column("email", String(320), nullable=True),
    Column("locale", String(8), nullable=False),
    Column("dm_channel_id", String(32), nullable=True),
    Column("conversation_id", String(32), nullable=True),
    _ts("updated_at"),
    Index("ix_slack_users_conversation", "conversation_id"),
)

# The office's Slack channel for sync status messages (set by an office admin).
slack_office_channels = Table(
    "slack_office_channels",
    metadata,
    Column("office_id", String(32), primary_key=True),
    Column("team_id", String(32), nullable=False),
    Column("channel_id", String(32), nullable=False),
    Column("set_by", String(320), nullable=False),
    _ts("updated_at"),
)

# Outgoing Slack messages: one row per (event, channel), sent and retried from here.
slack_notifications = Table(
    "slack_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(120), nullable=False),
    Column("team_id", String(32), nullable=True),
    Column("channel_id", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("blocks", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    _ts("next_attempt_at"),
    Column("last_error", String(200), nullable=True),
    Column("message_ts", String(40), nullable=True),
    # A reply in the thread of this message (a handoff's messages under its first one).
    Column("thread_ts", String(40), nullable=True),
    _ts("created_at"),
    _ts("sent_at", nullable=True),
    UniqueConstraint("event_id", "channel_id", name="uq_slack_notifications_event_channel"),
    Index("ix_slack_notifications_due", "status", "next_attempt_at"),
    Index("ix_slack_notifications_message", "channel_id", "message_ts"),
)

# bolt's OAuth flow: installations per workspace, and the state of each install attempt.
slack_installations = Table(
    "slack_installations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("enterprise_id", String(32), nullable=True),
    Column("team_id", String(32), nullable=True),
    Column("user_id", String(32), nullable=False),
    Column("is_enterprise_install", Integer, nullable=False, server_default="0"),
    Column("has_bot", Integer, nullable=False, server_default="0"),
    # The whole installation (bot and user tokens included), as bolt gives it, as JSON.
    Column("sealed", Sealed, nullable=False),
    _ts("installed_at"),
    Index("ix_slack_installations_team", "client_id", "enterprise_id", "team_id", "installed_at"),
)

slack_oauth_states = Table(
    "slack_oauth_states",
    metadata,
    Column("state", String(200), primary_key=True),
    _ts("expire_at"),
)

# Which key seals new secrets, named by its key id (never the key): one row, id 1.
# ``renkei keys rotate`` names a new key here; every process reads it every few seconds.
secret_key_state = Table(
    "secret_key_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("newest_key_id", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # rotating | done
    _ts("changed_at"),
    _ts("finished_at", nullable=True),
)
