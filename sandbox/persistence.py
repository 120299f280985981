"""Saves the sandbox's state after each request, before the answer leaves.

An answer that handed out a token or a code must never be sent for a state that a
restart would forget: the client would hold a refresh token the issuer does not
know. So the save runs when the answer's first message is sent, after the route
(and the fault injector) changed the state and before the client can see it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.expiry import tick
from sandbox.state import SandboxState


class SaveAfterRequest:
    """Pure ASGI middleware of an issuer app: apply due expiries, run, save, answer."""

    def __init__(self, app: ASGIApp, *, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Time passes between requests: consents that ended meanwhile end before this one.
        tick(self.state)
        saved = False

        async def save_then_send(message: Message) -> None:
            nonlocal saved
            if message["type"] == "http.response.start" and not saved:
                saved = True
                self.state.persist()
            await send(message)

        try:
            await self.app(scope, receive, save_then_send)
        finally:
            if not saved:
                self.state.persist()
