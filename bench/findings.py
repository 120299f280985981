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

Fixed (`bot/slack/listeners.py`, `bot/slack/members.py`, and an `AfterAck` limiter since
replaced by the `slack_request` job):

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

Since then (2026-12-07) the work after an ack is a job (`slack_request`): the web
process queues the request, sealed, in the transaction that notes it as seen, and
answers Slack only once that has committed, so a process killed after an ack loses no
reply (`tests/e2e/test_slack_after_ack.py`). `AfterAck` is gone: the job runner
bounds the work. That puts one write back on the ack's path, which is what the first
profile found slow on SQLite: with the in-process runner writing the replies'
conversation turns at the same time, the figure alone (`--only slack_ack`, on a
machine running the test suite beside it) gave at concurrency 10 p99 1,584 ms against
130 ms (12×) and 0.20× the throughput; at concurrency 50 p99 1.10× and 0.85× the
throughput, both goals met. Where the time goes at concurrency 10: the queueing write
waits in SQLite's busy handler (sleeps of 10–100 ms) behind the runner's writes.
On PostgreSQL the write takes no lock another writer holds; the figure with workers
in separate processes is the scale-out figure's to measure. On SQLite the trade is
deliberate: a reply that survives a crash is worth a slower ack under load, and the
ack stays far inside Slack's three seconds.

### Conversation turn (goal ≥ 0.1×)

The first profile: storage was 97% of a turn — four round trips and two commits
through SQLAlchemy's ORM session and aiosqlite. Fixed then: a turn takes and reads its
conversation in one statement (`UPDATE … SET version = version + 1 … RETURNING`), Core
statements built once, one upsert for the step counts, WAL with `synchronous=NORMAL`.
That left 0.03–0.05×: fourteen hops to aiosqlite's thread a turn (cursor, execute,
fetch, close, commit and the pool's rollback, for each of take and save), the
transcript (up to 200 entries) encoded and decoded as JSON every turn, and an upsert
of the step counts' shared rows.

Fixed (`backend/db/conversation_store.py`, revision `0013_transcript_lines`): the
transcript is one row a line, appended by the turn's save and never read by a turn;
a turn's steps go to an append-only log folded into the counts every 500 turns; on
SQLite a turn's take and save each run whole in one worker thread at the driver (one
hop each), with SQLAlchemy's compiled statements and type processing. The baseline
now writes the row as it is (without the transcript) with renkei's own durability
(`synchronous=NORMAL`; with the default, every commit of the baseline waited for the
disk). Side by side with the previous code in the same minutes, on a machine shared
with other heavy work: 36–58 turns/s (0.02×) before, 230–500 turns/s after
(0.10–0.38×, most runs 0.16–0.20×).

Where the time goes now (cProfile of 1,000 turns): SQLite's own execute and commit
about a fifth; JSON encoding of the row's slots, history and replies and of the new
lines about a seventh; SQLAlchemy's parameter processing and pooling about a tenth;
the flow engine (transitions' machine, the prompt) the rest. The baseline is one
read, one write and one commit of the raw driver; a turn is two commits (the take
must be visible to other processes before any back-end call). What would go further:
keep slots, history and replies in one JSON document, encoded once.

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
outbox delivery to the assistant over HTTP, the Slack message's job, the post to Slack —
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

### Notifications scaled out (goal ≥ 0.25× at each worker count; exactly once: met)

The first profile (py-spy on the web process and a worker, and the CPU time of every
process of the run): a worker spent about a third of its CPU building TLS settings.
The outbox sender opened a new HTTP client for each delivery of an event to the
assistant, and each new client loaded the whole CA bundle, about 40 ms of CPU for a
delivery over plain HTTP on loopback.

Fixed (`renkei/bootstrap.py`): deliveries build their TLS settings once per process.
Side by side with the previous code (2 workers, 90 events): 178 → 123 ms of CPU per
message over all processes, the workers' share 102 → 61 ms.

Where the time goes now (the CPU of each process over the full run): 101–123 ms of CPU
per message against the bare pipeline's 19–24 ms, about 0.2× by CPU whatever the
messages/s of one run say. The web process takes 40–45 ms at any worker count: the
simulated issuer about 15 ms (a new statement, the sandbox's state saved, the page
read; the bare run pays it too), then the issuer's webhook received and its sync
queued, the back end's event received and turned into a notice, and the Slack sender,
each through FastAPI's middleware. The workers take 45–61 ms: the sync (the
account and its link read, the page at the issuer through authlib, the ingest, the
lease, the issuer's health, the event and its outbox rows), the
event's delivery, and Procrastinate's fetch and finish. PostgreSQL takes 14–18 ms
(the bare pipeline's one insert, under 1 ms). On 2 cores that caps renkei near
15 messages/s at any worker count: workers beyond the first add contention, not
messages, and the web process is one stage that no worker relieves. What would close
it: more web processes behind the issuers' address on a machine with more cores, and
fewer round trips per sync (the account, its link, the issuer's health and the last
run read in one statement).

Since then (2026-12-07) Slack messages are posted by the workers, not by a loop in
every web process: each message is queued with its channel's `slack_notice` job, which
posts everything waiting in the channel, in order. A job per message was tried first
and measured 0.01× in the quick figure: Procrastinate's worker looks for a job held
back by its lock (the channel's next message) only at its next poll, 5 s by default.
With one job per channel, and workers looking for due jobs every 0.5 s besides NOTIFY,
the web process keeps only the requests, and the table's run above gives 14.8–15.8
messages/s at every worker count, against 7.9–14.0 before. The 2-core ceiling
described above still holds: workers beyond the first add contention.
"""
