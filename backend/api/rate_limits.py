"""Rate limits of the costly or abusable operations, per token and per client address.

Counted by the ``limits`` library in a moving window: in memory for one process (the
embedded default), or in Redis (``redis://host:port``) so that every web process of a
scale-out shares one count. A refused request answers 429 in the error shape with
``Retry-After``. When the storage cannot be reached the request is let through and a
warning logged: the limits guard against floods, they must not take the service down.

``app.state.rate_limits`` holds the ``RateLimits``; an app without it limits nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from backend.api.deps import ACT_AS_HEADER
from backend.api.errors import error_response

log = logging.getLogger(__name__)

CONVERSATIONS = "conversations"
CONSENTS = "consents"
UPLOADS = "uploads"
DEMO_SESSIONS = "demo_sessions"

DEFAULT_LIMITS: Mapping[str, str] = {
    CONVERSATIONS: "120/minute",
    CONSENTS: "60/minute",
    UPLOADS: "60/minute",
    DEMO_SESSIONS: "30/minute",
}
"""Generous: a person never meets them; a script that loops does."""

OFF = frozenset({"", "off", "none", "0"})


class TooManyRequests(Exception):
    def __init__(self, limit: str, retry_after: float) -> None:
        super().__init__(limit)
        self.limit = limit
        self.retry_after = retry_after


def async_storage_url(url: str) -> str:
    """``memory://`` and ``redis://...`` as the asynchronous storages ``limits`` names."""
    return url if url.startswith("async+") else f"async+{url}"


class RateLimits:
    """The limits of one service, by name (``conversations``, ``consents``...).

    Args:
        storage_url: ``memory://`` or ``redis://host:port[/db]``.
        limits: Name to a ``limits`` expression (``"120/minute"``, ``"10/second;500/hour"``);
            ``"off"`` or empty turns a limit off. Unnamed limits keep their default.
        namespace: Prefix of every counter, so services sharing a Redis stay apart.
    """

    def __init__(
        self,
        storage_url: str = "memory://",
        limits: Mapping[str, str] | None = None,
        *,
        namespace: str = "renkei",
    ) -> None:
        storage = storage_from_string(async_storage_url(storage_url))
        if not isinstance(storage, Storage):
            raise ValueError(f"not an asynchronous rate limit storage: {storage_url}")
        self.storage: Storage = storage
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._namespace = namespace
        chosen = {**DEFAULT_LIMITS, **(limits or {})}
        self.items: dict[str, list[RateLimitItem]] = {
            name: [] if text.strip().lower() in OFF else _parse_all(text)
            for name, text in chosen.items()
        }

    async def hit(self, name: str, *keys: str) -> float | None:
        """Count one request against each key; the seconds to wait when one is used up."""
        for item in self.items.get(name, []):
            for key in keys:
                try:
                    if await self._limiter.hit(item, self._namespace, name, key):
                        continue
                    stats = await self._limiter.get_window_stats(item, self._namespace, name, key)
                except Exception:
                    # A flood guard that is down lets requests through rather than refuse all.
                    log.warning("rate limit storage unavailable; %s not limited", name)
                    return None
                return max(1.0, stats.reset_time - time.time())
        return None


def _parse_all(text: str) -> list[RateLimitItem]:
    return [parse(part.strip()) for part in text.split(";") if part.strip()]


def _hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def keys_of(request: Request) -> list[str]:
    """Who is counted: the bearer token (or, for the assistant's service token, the member
    it acts for) and the client address.

    The assistant's calls all come from one address (its own process), so they are
    counted per member only.
    """
    keys: list[str] = []
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    service_token = getattr(request.app.state, "service_token", None)
    if scheme.lower() == "bearer" and token:
        if service_token and token == service_token:
            return [f"member:{_hashed(request.headers.get(ACT_AS_HEADER, ''))}"]
        keys.append(f"token:{_hashed(token)}")
    keys.append(f"address:{request.client.host if request.client else 'unknown'}")
    return keys


async def enforce(request: Request, name: str) -> None:
    """Count the request against the limit ``name``; TooManyRequests when used up."""
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if limits is None:
        return
    wait = await limits.hit(name, *keys_of(request))
    if wait is not None:
        raise TooManyRequests(name, wait)


def limited(name: str) -> Callable[[Request], Awaitable[None]]:
    """A route dependency that counts each request against the limit ``name``."""

    async def dependency(request: Request) -> None:
        await enforce(request, name)

    return dependency


async def _too_many(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TooManyRequests)
    seconds = math.ceil(exc.retry_after)
    return error_response(
        429,
        "too_many_requests",
        "too many requests of this kind; try again after Retry-After seconds",
        details={"limit": exc.limit, "retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


def install_rate_limits(app: FastAPI, limits: RateLimits | None) -> None:
    """Hold ``limits`` on the app and answer a used-up limit with 429."""
    app.state.rate_limits = limits
    app.add_exception_handler(TooManyRequests, _too_many)


def settings_limits(values: Mapping[str, Any]) -> dict[str, str]:
    """The limits named in settings (``rate_limit_<name>``), for ``RateLimits``."""
    return {
        name: str(values[f"rate_limit_{name}"])
        for name in DEFAULT_LIMITS
        if values.get(f"rate_limit_{name}") is not None
    }
