"""The one retry policy of background work, whichever runner carries it out."""

from __future__ import annotations

import datetime as dt
import random

from backend.service import outbox
from backend.service.sync import RetryLater

MAX_JOB_ATTEMPTS = 8
# Periodic upkeep: how often scheduled syncs are looked for, and old records pruned.
SCHEDULE_EVERY = dt.timedelta(minutes=1)
PRUNE_EVERY = dt.timedelta(hours=1)


def job_retry_delay(exc: BaseException, attempts: int) -> float | None:
    """Seconds until a failed job runs again, or None to give up.

    ``attempts`` counts the runs so far, this one included. A failure that carries
    ``retry_in`` (seconds) belongs to a job that counts its own attempts (an outbox row,
    a Slack message): it runs again then, or gives up by not raising. An issuer that
    said when to come back (``Retry-After``, carried by ``RetryLater``) is honoured,
    with a little jitter so the jobs of one outage do not all come back at once;
    anything else backs off exponentially.
    """
    retry_in = getattr(exc, "retry_in", None)
    if isinstance(retry_in, int | float):
        return float(retry_in)
    if attempts >= MAX_JOB_ATTEMPTS:
        return None
    if isinstance(exc, RetryLater):
        return exc.delay * (1 + random.random() / 4)  # noqa: S311 - jitter, not security
    return outbox.backoff_seconds(attempts) * 5


def delivery_retry_delay(attempts: int) -> float | None:
    """Seconds until an outbox row is sent again after ``attempts`` failed sends."""
    if attempts >= outbox.MAX_ATTEMPTS:
        return None
    return outbox.backoff_seconds(attempts)
