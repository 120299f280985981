"""The signature of renkei's webhooks, shared by the sender and every receiver.

Header ``Renkei-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`` over ``"<t>.<body>"``
with the shared secret. Pure functions of the standard library: the outbox signs with
them, and the assistant (which may not import the service layer) checks with them.
"""

from __future__ import annotations

import hashlib
import hmac


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
