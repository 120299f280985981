"""Delivering the outbox as signed webhooks, with retries and backoff.

Signature: ``backend.domain.signatures``, shared with the receivers (the assistant
checks with it without importing this layer); header ``Renkei-Event-Id`` carries the
event's unique id, so a receiver drops a delivery it has seen.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from backend.domain.model import Event
from backend.domain.signatures import sign as sign
from backend.domain.signatures import verify as verify

MAX_ATTEMPTS = 12


def backoff_seconds(attempts: int) -> float:
    """1 s, 2 s, 4 s … capped at an hour."""
    return float(min(2 ** max(attempts - 1, 0), 3600))


def event_body(event: Event) -> bytes:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "created": int(event.created_at.timestamp()),
            "office_id": event.office_id,
            "account_id": event.account_id,
            "data": event.payload,
        },
        ensure_ascii=False,
        sort_keys=True,
        default=str,
    ).encode()


@dataclass(frozen=True)
class Delivery:
    delivery_id: int
    url: str
    event: Event
    attempts: int


Sender = Callable[[str, bytes, dict[str, str]], Awaitable[int]]
"""Posts a body with headers to a URL; answers the HTTP status (raises on network error)."""
