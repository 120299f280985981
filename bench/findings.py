"""Where the time goes in each figure that misses its goal, what was fixed, what would fix the rest.

Written from profiles of the figures (pyinstrument in process, py-spy on ``renkei
serve``); ``docs/benchmarks.md`` carries it under the table. The ratios in the table
above it are those of the run; the numbers quoted here are from the profiles.
"""

FINDINGS = """
## Where the time goes

Profiles: pyinstrument on the in-process figures (`conversation turn`, `first sync
ingest`, `notifications`), py-spy on the `renkei serve` process during the Slack ack
figure. The product code is measured as it is. Each section says what an earlier
profile found, what was changed because of it, and where the time goes now. On this
machine (2 shared cores, the load generator, the fake Slack and renkei side by side)
the same figure moves by ±30% between runs, the baselines as much as renkei: read a
goal missed by a few hundredths as within that noise.

### Slack ack (goals: p99 ≤ 1.2×, throughput ≥ 0.8×)

The first profile: an ack waited behind the database, not behind the CPU. py-spy
showed renkei's event loop only about 30% busy while acks took up to a second: the
duplicate-request guard (`SlackStore.first_time`, an `INSERT` and a commit) and the
locale lookup ran before the ack, and SQLite's busy handler makes a writer that finds
the lock taken sleep in steps of 10–100 ms while the work of earlier commands writes.

Fixed (`bot/slack/listeners.py`, `bot/slack/members.py`, `bot/slack/after_ack.py`):

- nothing on the ack's path touches the database: the request key is noted by a
  middleware and checked (still in the database, so a retry reaching another process
  is caught) right after the ack, before any work; the person's locale is remembered
  in process;
- the work after the ack runs four at a time (`AfterAck`): an asyncio loop has no
  priorities, so with every command's work running at once a new request waited
  behind all of it; past 2,000 waiting pieces a command is acked with "busy, try
  again" instead of piling up;
- a member's offices (the "are you a member anywhere" check before a conversation
  starts) are asked of the back end once a minute, not on every command; every step
  after it is still checked against the member's role by the back end.

Measured with these, beside the same bare bolt app (the previous full run → the run
above; runs of the figure alone in brackets): at concurrency 10, p99 14× → 1.65×
(1.4–2.0×) and throughput 0.13× → 0.71× (0.45–0.82×); at concurrency 50, p99 1.8× →
1.01× and throughput 0.29× → 0.88×, both goals met. What is left is CPU: the work
after each ack (about 8 ms: creating the conversation, its first turn, posting the
menu to the fake Slack) runs on the same event loop as the acks and shares 2 cores
with the load generator. What would close it: run the after-ack work in worker
processes (the jobs table already lets any process take work), leaving the web
process only the acks.

### Conversation turn (goal ≥ 0.1×)

The first profile: storage was 97% of a turn — four round trips and two commits
through SQLAlchemy's ORM session and aiosqlite.

Fixed (`backend/db/conversation_store.py`, `statemachine/engine.py`): a turn takes and
reads its conversation in one statement (`UPDATE … SET version = version + 1 … RETURNING`)
instead of a `SELECT` then an `UPDATE`; the store runs on Core connections with its
statements built once (building SQLAlchemy expressions took longer than SQLite took
to run them); a turn's step counts are one upsert; SQLite runs WAL with
`synchronous=NORMAL`. renkei went from 221 turns/s (previous full run) to 246 in the
run above and 300–400 in runs of the figure alone; the ratio stays at 0.03–0.05×
because the raw baseline moves as much (5,800–9,400 turns/s).

Where the time goes now: five statements a turn (take + commit; save, count steps,
commit), each a hop to aiosqlite's thread and back (about 0.3–0.5 ms, against about
0.05 ms for the raw driver's whole turn), and the transcript (up to 200 entries)
encoded and decoded as JSON on every turn (about 15%). What would fix it: keep the
transcript in an append-only table (one small `INSERT` a turn), and count steps from
a turn log in batches instead of an upsert in every turn, leaving three hops a turn;
beyond that, a driver without a thread hop per statement.

### First sync ingest (goal ≥ 0.25× at 200,000 statements)

The first profile: the ORM was 58% of a first sync — a mapped `Statement` object per
line (SQLAlchemy's instrumented `__init__`), `session.add`, and the unit-of-work
flush.

Fixed (`backend/service/ingest.py`, `backend/db/repository.py`): the new lines of a
page are plain `NewStatement` objects (the stored `Statement` is the same class with
the mapping) inserted with one multi-row `INSERT`; ORM objects remain only for lines
that update or adopt a stored row. 0.20× (previous full run) → 0.21× in the run
above, 0.24× in runs of the figure alone.

Where the time goes now (30,000-statement profile): the issuer side is about 55% —
the sandbox generating each page (`sandbox/statements.py`), JSON both ways, and
parsing each line into an `IssuerStatement` (`connectors/issuers/payloads.py`, about
28 µs a line); the ingest itself about 30% (a UUID per new line is a fifth of it);
the rest is SQLite. The baseline inserts rows it already has. What would fix it:
parse pages with a compiled validator (pydantic's `TypeAdapter` over the page) instead
of per-field Python checks, and generate ids without `uuid.UUID` objects.

### Incremental resync (met)

A resync that finds nothing new reads the account, its link and one empty page from
the issuer by cursor; no query scans the history, so its time stays flat from 10,000
to 1,000,000 statements.

### Notifications (goal ≥ 500 messages/s; exactly once: met)

The first profile: one job at a time, a 0.5 s poll whenever the queue ran dry, one
outbox delivery at a time: 6.6 messages/s.

Fixed (`backend/jobs/runner.py`, `backend/db/repository.py`, `renkei/bootstrap.py`):
four jobs run side by side (the per-account sync lease keeps two syncs of one account
apart); due outbox rows go out in parallel lanes (one account's events stay in
order); a commit that queued a job or an outbox row wakes this process's idle
runner at once (other processes still find it by polling). 6.6 → 11.5 messages/s in
the run above (13.5 in a smaller run), still exactly once.

Where the time goes now: the figure is CPU-bound on one event loop, about 70 ms of
Python per message. Each message is a whole chain — the issuer's signed webhook
(receipt, link lookup, job), the job claim, a sync (lease, `grant_info` and one page
at the issuer over the in-process transport, the ingest, the completion event), the
outbox delivery to the assistant over HTTP, the notifier's queue, the post to Slack —
about 40 SQL statements, 12 commits and 5 in-process HTTP requests through FastAPI.
500 messages/s would need 2 ms per message. What would get closer: several worker
processes on PostgreSQL (jobs, leases and the outbox are already database-backed, so
they share the work without change); skip `grant_info` on a webhook-started sync when
the grant was read moments ago; merge a burst of notices for one office channel into
one message (Slack allows about one message per second per channel, so 500/s is only
reachable spread over many channels anyway).

### Memory (met)

Conversations live in the database; nothing of an idle conversation stays in the
process.
"""
