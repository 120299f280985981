"""One connection pool per connector, shared by the short-lived clients of each call."""

from __future__ import annotations

import httpx


class SharedTransport(httpx.AsyncBaseTransport):
    """Lends a transport to a client without letting the client close it.

    Each gateway call opens its own ``AsyncOAuth2Client`` (the tokens belong to
    the call), and ``httpx.AsyncClient.aclose()`` closes its transport; the pool
    (or the in-process ``ASGITransport``) must outlive the call, so closing is
    left to the gateway's own ``aclose()``.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the shared transport."""
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Do nothing: the owner closes the shared transport."""
