"""Jobs the use cases ask for; a runner (in-process or distributed) carries them out.

Jobs live in the database, written in the transaction that asks for them, so no
job is lost when a process dies and any worker may run it.
"""

from __future__ import annotations

import datetime as dt

from backend.domain.model import JobKind
from backend.service.context import ServiceContext
from backend.service.uow import Repository

SYNC_ACCOUNT = JobKind.SYNC_ACCOUNT.value


async def enqueue_sync(
    ctx: ServiceContext, repo: Repository, account_id: str, *, delay: float = 0.0
) -> None:
    # One sync per account at a time: the lock key serialises them across workers.
    await repo.enqueue_job(
        SYNC_ACCOUNT,
        {"account_id": account_id},
        lock_key=f"account:{account_id}",
        run_at=ctx.clock() + dt.timedelta(seconds=delay),
    )
