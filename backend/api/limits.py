"""Request size limits, enforced while a body streams in, before anything reads it.

One pure ASGI middleware in front of every route:

- a ``Content-Length`` above the route's limit is refused at once, without reading;
- otherwise the ``http.request`` messages are counted as they arrive and the request
  is refused as soon as the count passes the limit (a chunked body has no length);
- a JSON body (of a route that is not a webhook) is read whole, at most its limit,
  and parsed with a guard on nesting depth and number of keys before any handler or
  pydantic model sees it; the handler then gets the same bytes.

Webhooks get no JSON guard here: their handlers verify the signature over the raw
bytes first and parse only a signed body.

A refusal is a 413 in the error shape, with ``details`` naming the limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import anyio
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Above this, the guard's parse runs in a worker thread so the event loop stays free.
_PARSE_OFF_LOOP_BYTES = 64 * 1024
# A file of the upload limit still fits with its multipart boundaries and form fields.
_MULTIPART_FRAMING = 64 * 1024


class BodyKind(StrEnum):
    UPLOAD = "upload"
    WEBHOOK = "webhook"
    JSON = "json"


@dataclass(frozen=True)
class RequestLimits:
    """The limits of :class:`BodyLimits`; ``renkei.settings`` holds the operator's values."""

    upload_bytes: int = 10 * 1024 * 1024
    webhook_bytes: int = 1024 * 1024
    json_bytes: int = 1024 * 1024
    json_depth: int = 32
    json_keys: int = 1000

    @property
    def conversation_message_bytes(self) -> int:
        # A statement file sent to the assistant travels base64 in JSON: 4/3 of the
        # file, plus room for the rest of the message.
        return self.upload_bytes * 4 // 3 + 64 * 1024

    def max_bytes(self, kind: BodyKind, path: str) -> int:
        if kind is BodyKind.UPLOAD:
            if _CONVERSATION_MESSAGE.fullmatch(path):
                return self.conversation_message_bytes
            return self.upload_bytes + _MULTIPART_FRAMING
        if kind is BodyKind.WEBHOOK:
            return self.webhook_bytes
        return self.json_bytes


_STATEMENT_UPLOAD = re.compile(r"/api/v1/accounts/[^/]+/statements/upload/?")
_CONVERSATION_MESSAGE = re.compile(r"/api/v1/conversations/[^/]+/messages/?")
WEBHOOK_PREFIXES = ("/api/v1/issuer-webhooks/", "/bot/backend-events", "/slack/events")


def body_kind(path: str) -> BodyKind:
    """Which limit a path's body falls under."""
    if _STATEMENT_UPLOAD.fullmatch(path) or _CONVERSATION_MESSAGE.fullmatch(path):
        return BodyKind.UPLOAD
    if path.startswith(WEBHOOK_PREFIXES):
        return BodyKind.WEBHOOK
    return BodyKind.JSON


class PayloadTooLarge(HTTPException):
    """Raised from ``receive`` when the body passes its limit; answered 413."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(status_code=413, detail=message)
        self.details = details


class JsonTooComplex(Exception):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


def check_json(body: bytes, *, max_depth: int, max_keys: int) -> None:
    """Parse ``body`` as JSON within the limits; raise :class:`JsonTooComplex` beyond them.

    A body that is not JSON at all passes: the handler's own parse answers it.
    """
    keys = 0

    def count(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal keys
        keys += len(pairs)
        if keys > max_keys:
            raise JsonTooComplex("the JSON body has too many keys", max_keys=max_keys)
        return dict(pairs)

    try:
        document = json.loads(body, object_pairs_hook=count)
    except RecursionError as exc:
        raise JsonTooComplex("the JSON body is nested too deeply", max_depth=max_depth) from exc
    except ValueError:
        return  # not JSON (or not UTF-8): the route's own parse refuses it in its words
    if _depth_exceeds(document, max_depth):
        raise JsonTooComplex("the JSON body is nested too deeply", max_depth=max_depth)


def _depth_exceeds(document: Any, max_depth: int) -> bool:
    # Iterative: a deep document must not be walked by recursion.
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return bool(
                media == "application/json"
                or (media.startswith("application/") and media.endswith("+json"))
            )
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


TooLargeResponder = Callable[[str, dict[str, Any]], Any]


class BodyLimits:
    """The middleware; ``respond(message, details)`` builds the 413 answer (an ASGI app)."""

    def __init__(self, app: ASGIApp, *, limits: RequestLimits, respond: TooLargeResponder) -> None:
        self.app = app
        self.limits = limits
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        kind = body_kind(path)
        limit = self.limits.max_bytes(kind, path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, "the request body is too large", limit)
            return
        if kind is not BodyKind.WEBHOOK and _is_json(scope):
            await self._guarded_json(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge("the request body is too large", max_bytes=limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except PayloadTooLarge as exc:
            # A handler that let the refusal through (a mounted app, a bare route).
            if started:
                raise
            await self._refuse(scope, receive, send, str(exc.detail), limit)

    async def _guarded_json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await self._refuse(scope, receive, send, "the request body is too large", limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        del chunks
        try:
            if len(body) > _PARSE_OFF_LOOP_BYTES:
                await anyio.to_thread.run_sync(self._check, body)
            else:
                self._check(body)
        except JsonTooComplex as exc:
            await self._refuse_with(scope, receive, send, str(exc), exc.details)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    def _check(self, body: bytes) -> None:
        check_json(body, max_depth=self.limits.json_depth, max_keys=self.limits.json_keys)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, message: str, limit: int
    ) -> None:
        await self._refuse_with(scope, receive, send, message, {"max_bytes": limit})

    async def _refuse_with(
        self, scope: Scope, receive: Receive, send: Send, message: str, details: dict[str, Any]
    ) -> None:
        response = self.respond(message, details)
        await response(scope, receive, send)


def _size(n: int) -> str:
    mib = n / (1024 * 1024)
    return f"{mib:g} MiB" if mib >= 1 else f"{n / 1024:g} KiB"


def describe_limits(document: dict[str, Any], limits: RequestLimits) -> dict[str, Any]:
    """State each operation's body limit in an OpenAPI document: 413 and ``x-`` fields."""
    for path, operations in document.get("paths", {}).items():
        kind = body_kind(path)
        limit = limits.max_bytes(kind, path)
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation["x-max-body-bytes"] = limit
            text = f"The request body may have at most {limit} bytes ({_size(limit)})"
            if kind is not BodyKind.WEBHOOK:
                operation["x-max-json-depth"] = limits.json_depth
                operation["x-max-json-keys"] = limits.json_keys
                text += (
                    f"; a JSON body at most {limits.json_depth} levels of nesting and "
                    f"{limits.json_keys} keys in all"
                )
            text += ". Beyond that: 413 `payload_too_large`, before the body is read."
            entry = operation["responses"].setdefault("413", {})
            entry["description"] = text
            entry.setdefault(
                "content",
                {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
            )
            if "requestBody" in operation:
                described = operation.get("description", "")
                operation["description"] = f"{described}\n\n{text}".strip()
    return document
