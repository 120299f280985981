"""A small body limit and short validation errors for the simulated issuers.

The sandbox's requests are small forms and JSON documents; anything larger is a
mistake or an attack, refused with 413 before it is read. A validation error names
at most a few problems and never echoes the input, so a huge body cannot make the
answer huge.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 256 * 1024
MAX_PROBLEMS = 10
_MAX_TEXT = 120


class _TooLarge(HTTPException):
    # An HTTPException, so that a route reading its body lets it through as a 413.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body over {limit} bytes")


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {"error": "request_too_large", "error_description": f"body over {limit} bytes"},
        status_code=413,
    )


class BodyLimit:
    """Pure ASGI: refuse on ``Content-Length``, else count the body as it streams in."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            declared = value.strip()
            if name == b"content-length" and declared.isdigit() and int(declared) > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
        received = 0
        started = False

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge(self.max_bytes)
            return message

        async def watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, watching)
        except _TooLarge:
            if started:
                raise
            await _too_large(self.max_bytes)(scope, receive, send)


def _short(value: object) -> Any:
    if isinstance(value, int):
        return value
    text = str(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    found = list(exc.errors())
    problems = [
        {"loc": [_short(p) for p in list(e.get("loc", ()))[:6]], "msg": _short(e.get("msg", ""))}
        for e in found[:MAX_PROBLEMS]
    ]
    return JSONResponse(
        {"error": "invalid_request", "detail": problems, "count": len(found)}, status_code=422
    )


def install(app: FastAPI, *, max_bytes: int = MAX_BODY_BYTES) -> None:
    """Bound one issuer app's request bodies and its validation answers."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
