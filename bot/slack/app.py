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
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from backend.domain import errors
from backend.domain.model import JobKind
from bot.slack import SlackConfig, SlackPorts, SlackWork
from bot.slack.authorize import CachedAuthorize
from bot.slack.listeners import CARRIED, SlackFrontEnd
from bot.slack.manifest import BOT_SCOPES, EVENTS_PATH, INSTALL_PATH, REDIRECT_PATH
from bot.slack.members import Members
from bot.slack.notifications import Notifier, WorkspaceClients

log = logging.getLogger(__name__)


def _api_url(url: str) -> str:
    # slack_sdk joins method names onto the base URL: it must end with a slash.
    return url if url.endswith("/") else url + "/"


def build_bolt(
    config: SlackConfig, ports: SlackPorts, *, replay: bool = False
) -> tuple[AsyncApp, WorkspaceClients]:
    """bolt's app: the edge that acks (``replay`` False), or a worker's replay of the
    requests the edge queued (``replay`` True: their signatures were checked at the edge).

    Each listener runs to its end before the answer leaves (``process_before_response``):
    at the edge that end is the request queued, so no ack leaves before its work is safe.
    """
    assert config.signing_secret is not None
    bolt_options: dict[str, Any] = {
        "signing_secret": config.signing_secret,
        "process_before_response": True,
        "request_verification_enabled": not replay,
    }
    base_url = _api_url(config.api_url)
    # Interactive posts retry a rate limit briefly in place; notices retry from the outbox.
    retry = [AsyncRateLimitErrorRetryHandler(max_retry_count=1), AsyncConnectionErrorRetryHandler()]
    if config.oauth:
        assert config.client_id is not None and config.client_secret is not None
        if ports.installations is None or ports.oauth_states is None:
            raise ValueError("Slack's OAuth flow needs an installation store and a state store")
        client = AsyncWebClient(base_url=base_url, retry_handlers=retry)
        authorize = CachedAuthorize(
            ports.installations,
            client,
            client_id=config.client_id,
            client_secret=config.client_secret,
        )
        bolt = AsyncApp(
            **bolt_options,
            client=client,
            # bolt takes an AsyncAuthorize instance as its authorize middleware (its own
            # isinstance branch); only its annotation names a plain callable.
            authorize=authorize,  # type: ignore[arg-type]
            oauth_settings=AsyncOAuthSettings(
                client_id=config.client_id,
                client_secret=config.client_secret,
                scopes=list(BOT_SCOPES),
                redirect_uri=config.public_url.rstrip("/") + REDIRECT_PATH,
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
                installation_store=ports.installations,
                state_store=ports.oauth_states,
            ),
        )
        _forget_on_uninstall(bolt, ports.installations, authorize)
        return bolt, WorkspaceClients(base_url, None, ports.installations)
    bolt = AsyncApp(
        **bolt_options,
        client=AsyncWebClient(token=config.bot_token, base_url=base_url, retry_handlers=retry),
    )
    return bolt, WorkspaceClients(base_url, config.bot_token, None)


def _forget_on_uninstall(
    bolt: AsyncApp, installations: AsyncInstallationStore, authorize: CachedAuthorize
) -> None:
    """``app_uninstalled`` and ``tokens_revoked``: the workspace's stored tokens are deleted
    (Slack has already revoked them; keeping them would only keep a secret for nothing)."""

    async def uninstalled(context: AsyncBoltContext) -> None:
        await installations.async_delete_installation(
            enterprise_id=context.enterprise_id, team_id=context.team_id
        )
        authorize.forget(context.enterprise_id, context.team_id)
        log.info("Slack workspace %s uninstalled renkei; its tokens are deleted", context.team_id)

    async def revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        tokens = event.get("tokens") or {}
        if tokens.get("bot"):
            await installations.async_delete_bot(
                enterprise_id=context.enterprise_id, team_id=context.team_id
            )
        for user_id in tokens.get("oauth") or []:
            await installations.async_delete_installation(
                enterprise_id=context.enterprise_id, team_id=context.team_id, user_id=user_id
            )
        authorize.forget(context.enterprise_id, context.team_id)
        log.info("Slack tokens of workspace %s revoked and deleted", context.team_id)

    bolt.event("app_uninstalled")(uninstalled)
    bolt.event("tokens_revoked")(revoked)


def _front_end(
    config: SlackConfig, ports: SlackPorts, *, replaying: bool
) -> tuple[AsyncApp, WorkspaceClients, SlackFrontEnd]:
    """bolt with renkei's listeners: at the edge, or replaying what the edge queued."""
    bolt, clients = build_bolt(config, ports, replay=replaying)
    front = SlackFrontEnd(
        ports.conversations,
        ports.store,
        Members(ports.store, ports.backend_http),
        public_url=config.public_url,
        deferred=ports.deferred,
        replaying=replaying,
        support_channel=config.support_channel,
    )
    front.register(bolt)
    return bolt, clients, front


def mount(app: FastAPI, config: SlackConfig, ports: SlackPorts) -> None:
    """Mount ``/slack/events`` (and the install pages), start what Slack needs."""
    bolt, clients, _front = _front_end(config, ports, replaying=False)
    handler = AsyncSlackRequestHandler(bolt)
    notifier = _notifier(config, ports, clients)
    app.state.slack = bolt
    app.state.slack_notifier = notifier  # bot.backend_events hands each event to it

    assert config.signing_secret is not None  # bot.slack.install checked it
    signing_secret = config.signing_secret

    observe_ack = ports.observe_ack

    async def events(request: Request) -> Response:
        # bolt parses the body before it checks the signature; here nothing is parsed
        # until the signature holds, and a signed body bolt could not read is refused.
        arrived = time.perf_counter()
        body = await request.body()
        if not _signed(signing_secret, request, body, time.time()):
            raise errors.Unauthenticated("Slack signature missing, invalid or stale")
        problem = malformed(body, request.headers.get("content-type", ""))
        if problem is not None:
            raise errors.InvalidRequest(problem)
        response = await handler.handle(request)
        if observe_ack is not None:
            # bolt returns once the listener acked; the work after the ack runs apart.
            observe_ack(time.perf_counter() - arrived)
        return response

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
            socket = await _start_socket_mode(bolt, config.app_token)
            try:
                yield state
            finally:
                if socket is not None:
                    await socket.close_async()

    app.router.lifespan_context = lifespan
    log.info("Slack is on at %s%s", config.public_url.rstrip("/"), EVENTS_PATH)


def _notifier(config: SlackConfig, ports: SlackPorts, clients: WorkspaceClients) -> Notifier:
    return Notifier(
        ports.store,
        ports.directory,
        ports.conversations,
        ports.handoffs,
        clients,
        public_url=config.public_url,
        support_channel=config.support_channel,
        stop_link_urls=config.stop_link_urls,
    )


def build_background(config: SlackConfig, ports: SlackPorts) -> SlackWork:
    """What a job runner does for Slack, in any process: the requests the edge acked
    (each listener run again in full on the stored request, with the modal the edge
    opened), the messages to post, the handoffs to pass on."""
    bolt, clients, _front = _front_end(config, ports, replaying=True)
    notifier = _notifier(config, ports, clients)
    deferred = ports.deferred
    assert deferred is not None, "a replay needs the queue its requests come from"

    async def replay(payload: dict[str, Any]) -> None:
        request = deferred.opened(payload)
        if request is None:
            return
        # Socket Mode's form of a request: a payload already read, nothing to verify.
        await bolt.async_dispatch(
            AsyncBoltRequest(
                body=request.body, mode="socket_mode", context={CARRIED: request.carried}
            )
        )

    return SlackWork(
        handlers={
            JobKind.SLACK_REQUEST: replay,
            JobKind.SLACK_NOTICE: notifier.send,
            JobKind.SLACK_HANDOFFS: notifier.route,
        },
        upkeep=notifier.upkeep,
    )


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


async def _start_socket_mode(bolt: AsyncApp, token: str | None) -> Any:
    if token is None:
        return None
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    socket = AsyncSocketModeHandler(bolt, token)
    await socket.connect_async()  # type: ignore[no-untyped-call]
    log.info("Slack Socket Mode connected")
    return socket
