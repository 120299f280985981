"""Every request gets an id; an unexpected error becomes a 500 in the error shape.

The id comes back in ``X-Request-Id`` on every answer and inside every error body,
and names the log line of an unexpected error, so a person quoting it from an
error message can be matched to the traceback, which never leaves the server.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-Id"

log = logging.getLogger("renkei.errors")

_current: ContextVar[str | None] = ContextVar("renkei_request_id", default=None)

# An id sent by a proxy in front is kept when it is short and plain; anything else
# could smuggle text into log lines.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{8,64}")


def current_request_id() -> str | None:
    """The id of the request being answered, or None outside of one."""
    return _current.get()


def internal_error(request_id: str | None) -> JSONResponse:
    """The 500 of an error nobody expected: the error shape, no detail of the failure."""
    body: dict[str, object] = {
        "error": {
            "code": "internal_error",
            "rule": None,
            "message": "an unexpected error occurred; quote the request id when reporting it",
            "details": {},
            "request_id": request_id,
        }
    }
    return JSONResponse(body, status_code=500)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _ACCEPTED.fullmatch(text) else None
    return None


class RequestContext:
    """Outermost middleware: the request id, and the last word on any uncaught error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        token = _current.set(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unexpected error answering %s %s [request_id=%s]",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
            if started:
                raise  # the answer is half sent: the server closes the connection
            await internal_error(request_id)(scope, receive, send_with_id)
        finally:
            _current.reset(token)
