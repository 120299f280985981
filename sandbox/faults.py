"""Fault injection: the next N requests of a path fail the way a real issuer sometimes does."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.state import Fault, Issuer, SandboxState
from sandbox.web import route_path

FAULT_KINDS = ("500", "429", "slow", "timeout", "malformed_json")


class FaultInjector:
    """ASGI middleware of one issuer app that applies the faults of `POST /control/faults`."""

    def __init__(self, app: ASGIApp, *, state: SandboxState, issuer: Issuer) -> None:
        """Wrap ``app``.

        Args:
            app: The issuer app.
            state: The sandbox whose fault table to read.
            issuer: The issuer whose faults apply.
        """
        self.app = app
        self.state = state
        self.issuer = issuer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request, or fail it if a fault is armed for its path."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        fault = self._take(path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            await self.app(scope, receive, send)
        elif fault.kind == "timeout":
            # Hold the request longer than a sane client waits; stop early if it gives up.
            if not await _wait_for_disconnect(receive, fault.delay):
                await _send_json(send, 504, {"error": "timeout"})
        elif fault.kind == "429":
            await _send_json(
                send,
                429,
                {"error": "rate_limited"},
                [(b"retry-after", str(fault.retry_after).encode())],
            )
        elif fault.kind == "malformed_json":
            await _send_raw(send, 200, b'{"added": [{"transaction_id": "txn_', b"application/json")
        else:
            await _send_json(send, 500, {"error": "server_error"})

    def _take(self, path: str) -> Fault | None:
        # The control API is never faulted, so a test can always clear what it armed.
        if path.startswith("/control"):
            return None
        faults = self.state.issuers[self.issuer].faults
        fault = faults.get(path)
        if fault is None:
            return None
        if fault.after > 0:
            # e.g. the second page of a sync fails after the first went through
            fault.after -= 1
            return None
        fault.times -= 1
        if fault.times <= 0:
            del faults[path]
        return fault


async def _wait_for_disconnect(receive: Receive, seconds: float) -> bool:
    async def disconnected() -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                return

    try:
        await asyncio.wait_for(disconnected(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def _send_json(
    send: Send, status: int, body: dict[str, str], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send_raw(send, status, json.dumps(body).encode(), b"application/json", headers)


async def _send_raw(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
