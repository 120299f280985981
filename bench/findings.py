"""Where the time goes in each figure that misses its goal, and what would fix it.

Written from profiles of the figures (pyinstrument in process, py-spy on ``renkei
serve``); ``docs/benchmarks.md`` carries it under the table.
"""

FINDINGS = """
## Where the time goes

Profiles: pyinstrument on the in-process figures (`conversation turn`, `first sync
ingest`, `notifications`), py-spy on the `renkei serve` process during the Slack ack
figure. The product code is measured as it is; the fixes below are for the product.
Within the suite, the one fix in reach was made: the notifications figure polled the
fake Slack every 20 ms from the event loop it measures (8% of that loop's time); it
now polls every 100 ms.

### Conversation turn (SQLite 0.04×, goal 0.1×; PostgreSQL 0.20×)

The engine and the shared transitions machine take about 3% of a turn; the rest is
storage, in four round trips and two commits through SQLAlchemy's async session and
aiosqlite (each statement costs a hop to aiosqlite's thread and a greenlet switch,
about 0.3–0.5 ms, against about 0.05 ms for the raw driver):

- `SqlConversationStore.save` 48%: the whole row written back, with its transcript
  of up to 200 entries re-encoded as JSON every turn; the commit (18%); one
  `INSERT … ON CONFLICT` per step count (13%, two per forward turn).
- `SqlConversationStore.claim` 28%: a separate `UPDATE … SET version` and commit
  before the back-end calls (the second fsync of every turn).
- `SqlConversationStore.load` 19%: the `SELECT` and the JSON decoding of the row.

What would fix it (`backend/db/conversation_store.py`, `statemachine/engine.py`):
claim and load in one statement (`UPDATE conversations SET version = version + 1
WHERE id = ? AND version = ? RETURNING *`, SQLite ≥ 3.35 and PostgreSQL), so a turn
is one claim-and-read plus one save: one commit fewer; count a turn's steps in one
multi-row upsert in `save`; keep the transcript in an append-only table (one small
`INSERT` per turn) instead of rewriting it inside the row. With WAL,
`PRAGMA synchronous=NORMAL` in `backend/db/engine.py` `make_engine` halves the cost
of each commit (durable across process crashes; the last transactions can be lost
on power loss) — the baseline would then use it too.

### First sync ingest (SQLite 0.20× at 200k, goal 0.25×; PostgreSQL 0.16×)

Of a first sync (20k-statement profile): the ORM 58% — building a `Statement`
object per line (19%, SQLAlchemy's instrumented `__init__`), `session.add` (8%) and
the unit-of-work flush (31%); the issuer side (the sandbox generating each page,
JSON both ways, `connectors/issuers/payloads.py` parsing) 17%; the commits 6%.
The baseline pays for none of the ORM work. At 200k rows both sides slow down as
the table's four indexes grow (random 32-character ids).

What would fix it: in `backend/service/ingest.py` `ingest_api_lines`, insert the new
lines of a page with one Core `insert(statements)` executed with a list of rows
(SQLAlchemy's insertmanyvalues batches them) through a new repository method, and
keep ORM objects only for lines that update or adopt a stored row; expected
3–4× on the database part.

### Incremental resync (met: 1.03× at 1M)

A resync that finds nothing new reads the account, its link and one empty page from
the issuer by cursor; no query scans the history, so its time stays flat.

### Slack ack (p99 14× and 1.8×, throughput 0.13× and 0.29×; goals 1.2× and 0.8×)

The ack itself is cheap (bolt's handling, the duplicate-request guard and the
locale lookup: about 10% of the event loop). The rest of each command runs after
the ack on the same event loop and the same SQLite writer, and later acks queue
behind it: `SlackFrontEnd._command` takes about 55% of the loop — `Members.offices`
(a REST call to renkei's own back end through the in-process HTTP transport, with a
token lookup, 22%), posting the menu to Slack (15%), creating the conversation
(10%). Throughput is bounded by that whole per-command work (about 15 ms of
wall time a command), not by the ack; the p99 at concurrency 10 (about 1 s) is
inside Slack's 3 s but far from a bare app's.

What would fix it (`bot/slack/listeners.py`, `bot/slack/members.py`): hand the work
after the ack to a bounded queue of workers so an ack never waits behind it; read a
member's offices through the service layer in process (or cache them for a minute)
instead of a REST round trip per command; write the duplicate-request guard
(`SlackStore.first_time`) without a commit of its own on the ack's path (batched,
or with `synchronous=NORMAL`).

### Notifications (6.6 messages/s, goal 500/s; exactly 5,000 of 5,000: met)

Every message is one whole sync, run one at a time: `InProcessRunner.run_once`
(`backend/jobs/runner.py`) claims one job, runs `sync_account` (about 21 ms: the
lease, `grant_info` and the page at the issuer, two commits, the completion event),
then delivers the outbox one event at a time over HTTP to the bot (about 11 ms), whose
notifier queues and posts the message; the issuer webhook that started it costs
another 13 ms. That is about 50 ms of one event loop per message, and the runner
sleeps its 0.5 s poll interval whenever the queue runs dry between webhooks.

What would fix it: run several jobs at once in `InProcessRunner` (the per-account
sync lease already keeps two syncs of one account apart) and wake the runner when a
job is enqueued instead of polling; deliver due outbox events concurrently and hand
in-process subscribers (the assistant's own events) their events without HTTP; in
`sync_account`, skip `grant_info` and the card check on a webhook-started sync when
the grant was read moments ago. Note that Slack allows about one message per second
per channel: 500 messages/s is only reachable spread over many channels, and for one
office channel the notices of a burst should be merged into one.

### Memory (met: +6 MB after 100,000 idle conversations)

Conversations live in the database; nothing of an idle conversation stays in the
process.
"""
