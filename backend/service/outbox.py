"""Delivering the outbox as signed webhooks, with retries and backoff.

Signature: header ``Renkei-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`` over
``"<t>.<body>"`` with the shared secret; header ``Renkei-Event-Id`` carries the
event's unique id, so a receiver drops a delivery it has seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from backend.domain.model import Event

MAX_ATTEMPTS = 12


def backoff_seconds(attempts: int) -> float:
    """1 s, 2 s, 4 s … capped at an hour."""
    return float(min(2 ** max(attempts - 1, 0), 3600))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """Check a signature header; refuse stale timestamps (replays)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    # As bytes: a header may carry any character, and str comparison refuses non-ASCII.
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


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
