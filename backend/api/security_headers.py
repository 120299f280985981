"""Headers every answer carries: no framing, no MIME sniffing, a CSP on every HTML page.

A page that sets its own ``Content-Security-Policy`` keeps it; ``frame-ancestors
'none'`` is added to it when missing, so no page of renkei can be framed
(clickjacking of a consent or a confirmation).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# For renkei's own server-rendered pages (the OAuth result page): inline styles only,
# no script, forms only to renkei itself.
DEFAULT_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Pure ASGI middleware (streams pass through untouched)."""

    def __init__(self, app: ASGIApp, page_policy: str = DEFAULT_PAGE_POLICY) -> None:
        self.app = app
        self.page_policy = page_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                if headers.get("content-type", "").startswith("text/html"):
                    policy = headers.get("content-security-policy")
                    if policy is None:
                        headers["Content-Security-Policy"] = self.page_policy
                    elif "frame-ancestors" not in policy:
                        headers["Content-Security-Policy"] = (
                            f"{policy.rstrip('; ')}; frame-ancestors 'none'"
                        )
            await send(message)

        await self.app(scope, receive, send_with_headers)
