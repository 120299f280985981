"""The Slack app proper: bolt's ``AsyncApp`` behind FastAPI at ``/slack/events``.

HTTP mode through bolt's FastAPI adapter; Socket Mode as well when ``SLACK_APP_TOKEN``
is set (local use: no public URL needed). One bot token is one workspace; with
``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET`` bolt's OAuth flow installs renkei in
any number of workspaces, the installations kept in renkei's database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from backend.db.conversation_store import SqlConversationStore
from backend.domain import errors
from bot.slack.listeners import SlackFrontEnd
from bot.slack.manifest import BOT_SCOPES, EVENTS_PATH, INSTALL_PATH, REDIRECT_PATH
from bot.slack.members import Members
from bot.slack.notifications import Notifier, WorkspaceClients
from bot.slack.oauth_stores import SqlInstallationStore, SqlOAuthStateStore
from bot.slack.store import SlackStore

if TYPE_CHECKING:
    from renkei.bootstrap import Runtime

log = logging.getLogger(__name__)


def _api_url(url: str) -> str:
    # slack_sdk joins method names onto the base URL: it must end with a slash.
    return url if url.endswith("/") else url + "/"


def build_bolt(runtime: Runtime) -> tuple[AsyncApp, WorkspaceClients]:
    settings = runtime.settings
    assert settings.slack_signing_secret is not None
    signing_secret = settings.slack_signing_secret.get_secret_value()
    base_url = _api_url(settings.slack_api_url)
    # Interactive posts retry a rate limit briefly in place; notices retry from the outbox.
    retry = [AsyncRateLimitErrorRetryHandler(max_retry_count=1), AsyncConnectionErrorRetryHandler()]
    if settings.slack_client_id and settings.slack_client_secret:
        installations = SqlInstallationStore(
            runtime.sessions, settings.slack_client_id, runtime.services.secrets
        )
        bolt = AsyncApp(
            signing_secret=signing_secret,
            client=AsyncWebClient(base_url=base_url, retry_handlers=retry),
            oauth_settings=AsyncOAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.get_secret_value(),
                scopes=list(BOT_SCOPES),
                redirect_uri=settings.public_url.rstrip("/") + REDIRECT_PATH,
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
                installation_store=installations,
                state_store=SqlOAuthStateStore(runtime.sessions),
            ),
        )
        return bolt, WorkspaceClients(base_url, None, installations)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    bolt = AsyncApp(
        signing_secret=signing_secret,
        client=AsyncWebClient(token=token, base_url=base_url, retry_handlers=retry),
    )
    return bolt, WorkspaceClients(base_url, token, None)


def mount(app: FastAPI, runtime: Runtime) -> None:
    """Mount ``/slack/events`` (and the install pages), start what Slack needs."""
    settings = runtime.settings
    bolt, clients = build_bolt(runtime)
    store = SlackStore(runtime.sessions, runtime.services.clock)
    front = SlackFrontEnd(runtime.conversations, store, Members(store, runtime.backend_http))
    front.register(bolt)
    handler = AsyncSlackRequestHandler(bolt)
    notifier = Notifier(
        runtime.sessions,
        store,
        runtime.conversations,
        SqlConversationStore(runtime.engine),
        clients,
        support_channel=settings.slack_support_channel,
    )
    app.state.slack = bolt
    app.state.slack_notifier = notifier  # bot.backend_events hands each event to it

    assert settings.slack_signing_secret is not None  # bot.slack.install checked it
    signing_secret = settings.slack_signing_secret.get_secret_value()

    async def events(request: Request) -> Response:
        # bolt parses the body before it checks the signature; here nothing is parsed
        # until the signature holds, and a signed body bolt could not read is refused.
        body = await request.body()
        if not _signed(signing_secret, request, body, time.time()):
            raise errors.Unauthenticated("Slack signature missing, invalid or stale")
        problem = malformed(body, request.headers.get("content-type", ""))
        if problem is not None:
            raise errors.InvalidRequest(problem)
        return await handler.handle(request)

    async def pages(request: Request) -> Response:
        return await handler.handle(request)

    app.add_api_route(EVENTS_PATH, events, methods=["POST"], include_in_schema=False)
    if bolt.oauth_flow is not None:
        app.add_api_route(INSTALL_PATH, pages, methods=["GET"], include_in_schema=False)
        app.add_api_route(REDIRECT_PATH, pages, methods=["GET"], include_in_schema=False)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        # Inside the app's own lifespan: the database is migrated before anything starts.
        async with inner(application) as state:
            notifier.start()
            socket = await _start_socket_mode(bolt, runtime)
            try:
                yield state
            finally:
                if socket is not None:
                    await socket.close_async()
                await notifier.stop()

    app.router.lifespan_context = lifespan
    log.info("Slack is on at %s%s", settings.public_url.rstrip("/"), EVENTS_PATH)


def _signed(secret: str, request: Request, body: bytes, now: float) -> bool:
    """Slack's v0 signature over the exact bytes; five minutes of clock skew at most."""
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if abs(now - int(timestamp)) > 5 * 60:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def malformed(body: bytes, content_type: str) -> str | None:
    """Why bolt could not read a (signed) body, or None when it can.

    Mirrors bolt's own reading: JSON when labelled so or when it starts with ``{``,
    else a form whose ``payload`` field, when present, is JSON.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    if not text:
        return None
    if content_type.split(";", 1)[0].strip().lower() == "application/json" or text.startswith("{"):
        return None if _json_object(text) else "the body is not a JSON object"
    payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
    if payload is not None and not _json_object(payload):
        return "the form's payload is not a JSON object"
    return None


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


async def _start_socket_mode(bolt: AsyncApp, runtime: Runtime) -> Any:
    token = runtime.settings.slack_app_token
    if token is None:
        return None
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    socket = AsyncSocketModeHandler(bolt, token.get_secret_value())
    await socket.connect_async()  # type: ignore[no-untyped-call]
    log.info("Slack Socket Mode connected")
    return socket
