"""Jobs the use cases ask for; a runner (in-process or Procrastinate) carries them out.

Jobs are written in the transaction that asks for them (``Repository.enqueue_job``),
so no job is lost when a process dies and any worker may run it.
"""

from __future__ import annotations

import datetime as dt

from backend.domain.model import JobKind
from backend.service.context import ServiceContext
from backend.service.uow import Repository

SYNC_ACCOUNT = JobKind.SYNC_ACCOUNT.value
DELIVER_WEBHOOK = JobKind.DELIVER_WEBHOOK.value
SLACK_REQUEST = JobKind.SLACK_REQUEST.value
SLACK_NOTICE = JobKind.SLACK_NOTICE.value
SLACK_HANDOFFS = JobKind.SLACK_HANDOFFS.value
# Work a person is waiting on (their reply in Slack, the message that says their card is
# linked) goes before background work (syncs, deliveries) due at the same time: a busy
# queue delays a sync, not an answer.
PERSON_WAITING = frozenset({SLACK_REQUEST, SLACK_NOTICE})


def sync_lock(account_id: str) -> str:
    """One sync per account at a time, in any process; one waiting sync per account."""
    return f"account:{account_id}"


async def enqueue_sync(
    ctx: ServiceContext, repo: Repository, account_id: str, *, delay: float = 0.0
) -> None:
    await repo.enqueue_job(
        SYNC_ACCOUNT,
        {"account_id": account_id},
        lock_key=sync_lock(account_id),
        run_at=ctx.clock() + dt.timedelta(seconds=delay),
    )


async def schedule_periodic_syncs(ctx: ServiceContext, interval: dt.timedelta) -> int:
    """Queue a sync for every live account not synced within ``interval``; how many.

    The one place periodic syncs are decided, whichever runner calls it: JCB statements
    arrive late by API (R9) and a missed webhook must not leave a gap. An account whose
    sync already waits gets no second one (the queue keeps one per lock key), nor one
    whose sync runs now: it holds the account's lease, or its job was claimed and has not
    taken the lease yet (a first sync at start).
    """
    async with ctx.uow() as uow:
        due = await uow.repo.accounts_due_for_sync(ctx.clock(), interval)
        running = await uow.repo.running_lock_keys(SYNC_ACCOUNT)
        queued = [account_id for account_id in due if sync_lock(account_id) not in running]
        for account_id in queued:
            await enqueue_sync(ctx, uow.repo, account_id)
        await uow.commit()
    return len(queued)
