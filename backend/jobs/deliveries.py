"""Sending one outbox row as a signed webhook; both runners use it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from backend.db.job_store import SqlJobStore
from backend.domain.model import Event
from backend.jobs.policy import delivery_retry_delay
from backend.service import outbox


class DeliveryFailed(Exception):
    """A subscriber did not take the event; it is sent again after the backoff."""

    def __init__(self, error: str, retry_in: float) -> None:
        super().__init__(error)
        self.retry_in = retry_in  # the row counts its attempts (``job_retry_delay``)


async def deliver_one(
    store: SqlJobStore,
    sender: outbox.Sender,
    secret: str,
    clock: Callable[[], dt.datetime],
    row: tuple[int, str, int, Event],
) -> None:
    """Send the row's event, record the outcome; raise ``DeliveryFailed`` to retry."""
    delivery_id, url, attempts, event = row
    body = outbox.event_body(event)
    now = clock()
    headers = {
        "Content-Type": "application/json",
        "Renkei-Event-Id": event.id,
        "Renkei-Signature": outbox.sign(secret, int(now.timestamp()), body),
    }
    error: str | None = None
    try:
        status = await sender(url, body, headers)
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except Exception as exc:  # network errors of any client library
        error = type(exc).__name__
    attempts += 1
    delay = delivery_retry_delay(attempts)
    done = error is None or delay is None  # delivered, or given up
    await store.mark_delivery(
        delivery_id,
        delivered_at=now if done else None,
        attempts=attempts,
        next_attempt_at=now + dt.timedelta(seconds=delay or 0),
        error=error,
    )
    if not done:
        assert error is not None and delay is not None
        raise DeliveryFailed(error, delay)
