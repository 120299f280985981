"""Issuer health: recording sync outcomes, answering healthy / degraded / down, and
deciding whether a scheduled sync may ask an issuer now.

The judgement itself (window, thresholds, probe backoff) is plain code in
``backend.domain.issuer_health``; this module reads and writes its rows.
"""

from __future__ import annotations

from backend.domain.issuer_health import (
    HealthState,
    IssuerHealth,
    outcome_of,
    probe_delay,
    should_sync_now,
)
from backend.domain.model import Issuer
from backend.service.context import ServiceContext
from backend.service.uow import Repository

__all__ = [
    "HealthState",
    "IssuerHealth",
    "current",
    "may_sync",
    "record_outcome",
    "should_sync_now",
]


async def record_outcome(
    ctx: ServiceContext,
    repo: Repository,
    issuer: Issuer | str,
    account_id: str,
    error_code: str | None,
) -> None:
    """Add a finished sync run's outcome to its issuer's window.

    Args:
        ctx: The service context (for its clock).
        repo: The repository of the sync's own transaction.
        issuer: The account's issuer.
        account_id: The account synced.
        error_code: The run's error code; None when it succeeded.
    """
    kind = outcome_of(error_code)
    if kind is None:
        return  # rate-limited, or renkei's own fault: says nothing about the issuer
    await repo.record_sync_outcome(str(issuer), account_id, kind, error_code, ctx.clock())


async def current(ctx: ServiceContext) -> list[IssuerHealth]:
    """Every issuer's health now, in the order of ``Issuer``.

    It tells how an issuer answers renkei as a whole and nothing of any office, so any
    signed-in caller may read it.
    """
    async with ctx.uow() as uow:
        now = ctx.clock()
        return [await uow.repo.issuer_health(str(issuer), now) for issuer in Issuer]


async def may_sync(ctx: ServiceContext, repo: Repository, issuer: Issuer | str) -> bool:
    """Whether a scheduled sync of an account of ``issuer`` may ask the issuer now.

    While the issuer is down, only the one sync that takes the probe goes through
    (compare-and-set in the caller's transaction, so it holds only if committed); the
    others are left for after the issuer answers again.
    """
    now = ctx.clock()
    health = await repo.issuer_health(str(issuer), now)
    if not should_sync_now(health, now):
        return False
    if health.state != HealthState.DOWN:
        return True
    return await repo.claim_issuer_probe(
        str(issuer), now, now + probe_delay(health.failure_streak + 1)
    )
