"""Rate limits of the sandbox's pages (consent and member site), per client address.

The sandbox imports nothing of renkei: it counts with the ``limits`` library itself,
in memory or in a Redis shared with the other processes (``redis://host:port``).
"""

from __future__ import annotations

import json
import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.web import route_path

log = logging.getLogger(__name__)

DEFAULT_PAGE_LIMIT = "600/minute"
# What a person's browser opens; the APIs renkei calls server to server are not pages.
PAGE_PREFIXES = ("/oauth/authorize", "/member")


class PageLimiter:
    """One count per client address over the pages of both issuers.

    Args:
        limit: A ``limits`` expression, e.g. ``"600/minute"``; ``"off"`` counts nothing.
        storage_url: ``memory://`` or ``redis://host:port``.
        namespace: Prefix of the counters in a shared storage.
    """

    def __init__(
        self,
        limit: str = DEFAULT_PAGE_LIMIT,
        storage_url: str = "memory://",
        *,
        namespace: str = "sandbox",
    ) -> None:
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        storage = storage_from_string(url)
        if not isinstance(storage, Storage):
            raise ValueError(f"not an asynchronous rate limit storage: {storage_url}")
        self._storage: Storage = storage
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._namespace = namespace
        off = limit.strip().lower() in ("", "off", "none", "0")
        self.items: list[RateLimitItem] = (
            [] if off else [parse(p.strip()) for p in limit.split(";") if p.strip()]
        )

    async def wait(self, address: str) -> float | None:
        """Count one page; the seconds to wait when the address used its limit up."""
        for item in self.items:
            try:
                if await self._limiter.hit(item, self._namespace, "pages", address):
                    continue
                stats = await self._limiter.get_window_stats(
                    item, self._namespace, "pages", address
                )
            except Exception:
                log.warning("sandbox rate limit storage unavailable; pages not limited")
                return None
            return max(1.0, stats.reset_time - time.time())
        return None


class PageRateLimiter:
    """ASGI middleware of one issuer app: 429 with Retry-After past the page limit."""

    def __init__(self, app: ASGIApp, *, limiter: PageLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope).startswith(PAGE_PREFIXES):
            client = scope.get("client")
            wait = await self.limiter.wait(client[0] if client else "unknown")
            if wait is not None:
                await _too_many(send, math.ceil(wait))
                return
        await self.app(scope, receive, send)


async def _too_many(send: Send, seconds: int) -> None:
    body = json.dumps(
        {"error": "rate_limited", "error_description": f"too many requests; retry in {seconds} s"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(seconds).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
