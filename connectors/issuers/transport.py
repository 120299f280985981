"""One connection pool per connector, shared by the short-lived clients of each call."""

from __future__ import annotations

import asyncio

import httpx


class SharedTransport(httpx.AsyncBaseTransport):
    """Lends a transport to a client without letting the client close it, and holds
    each request to its deadline.

    Each gateway call opens its own ``AsyncOAuth2Client`` (the tokens belong to
    the call), and ``httpx.AsyncClient.aclose()`` closes its transport; the pool
    (or the in-process ``ASGITransport``) must outlive the call, so closing is
    left to the gateway's own ``aclose()``.

    httpx enforces its timeouts in its network layer only: over ``ASGITransport``
    (the sandbox mounted in process) a slow issuer would hold the call for as long
    as it likes. The deadline here holds whatever the transport.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *, deadline: float | None = None) -> None:
        self._inner = inner
        self._deadline = deadline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the shared transport; ``httpx.ReadTimeout`` past the deadline."""
        if self._deadline is None:
            return await self._inner.handle_async_request(request)
        try:
            async with asyncio.timeout(self._deadline):
                return await self._inner.handle_async_request(request)
        except TimeoutError as exc:
            # The same error httpx raises on a socket, so the connector treats both alike.
            raise httpx.ReadTimeout(
                f"no answer within {self._deadline:g} s", request=request
            ) from exc

    async def aclose(self) -> None:
        """Do nothing: the owner closes the shared transport."""
