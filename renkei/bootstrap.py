"""The composition root: settings in, a running renkei out. Only this module wires parts."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import secrets as pysecrets
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.api.app import create_api_router, install_error_handlers
from backend.api.deps import get_principal
from backend.api.docs import install_docs
from backend.api.errors import too_large_response
from backend.api.limits import BodyLimits, RequestLimits, describe_limits
from backend.api.openapi import error_responses
from backend.api.rate_limits import (
    CONVERSATIONS,
    DEMO_SESSIONS,
    RateLimits,
    install_rate_limits,
    limited,
    settings_limits,
)
from backend.api.request_context import RequestContext
from backend.api.schemas import IssuerInfoOut
from backend.api.security_headers import SecurityHeaders
from backend.db.conversation_store import SqlConversationStore
from backend.db.engine import make_engine, make_sessions, migrate, ping
from backend.db.job_store import Retention, SqlJobStore
from backend.db.repository import SqlUnitOfWork
from backend.db.secret_keys import KeyWatcher
from backend.db.slack_store import SqlDeferredRequests, SqlDirectory, SqlSlackStore
from backend.db.token_store import SqlTokenStore
from backend.domain.model import Issuer
from backend.jobs.distributed import ProcrastinateJobs, Timing, Work
from backend.jobs.runner import InProcessRunner
from backend.secrets import FernetSecretBox, load_or_create_key_file
from backend.service import jobs as job_kinds
from backend.service import outbox
from backend.service.consent_expiry import run_consent_expiry_check
from backend.service.context import ServiceContext
from backend.service.ports import IssuerGateway
from backend.service.sync import RetryLater, sync_account
from bot.api import conversation_router
from bot.backend_events import EVENTS_PATH
from bot.backend_events import router as backend_events_router
from bot.conversations import Conversations, choice_label, reply_text
from bot.ports import ApiEdge
from bot.slack import SlackConfig, SlackPorts, background_work
from bot.slack import install as install_slack
from bot.web import install as install_web_chat
from connectors.backend_client import BackendClient, connect
from connectors.issuers import IssuerConfig, build_gateways
from renkei import log_redaction
from renkei.demo import OWNER, seed_demo
from renkei.operations import install_operations, observe_job, observe_slack_ack
from renkei.settings import Settings, SettingsError, check_settings
from renkei.statement_files import parse_statement_file
from statemachine.engine import FlowEngine
from statemachine.flows import ALL_FLOWS

log = logging.getLogger("renkei")

SANDBOX_CONTROL_KEY_FILE = "sandbox-control-key"
# The simulated issuers' own database (never renkei's): their grants survive a restart.
SANDBOX_STATE_FILE = "sandbox-issuers.sqlite3"


@dataclass
class Runtime:
    """Everything a running renkei holds; built once per process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    services: ServiceContext
    # Background work: the in-process runner on SQLite, Procrastinate on PostgreSQL.
    runner: InProcessRunner | ProcrastinateJobs
    keys: KeyWatcher
    tokens: SqlTokenStore
    conversations: Conversations
    conversation_store: SqlConversationStore
    backend_http: httpx.AsyncClient
    # Set after a commit that queued work: this process's runner starts on it at once.
    wake: asyncio.Event


def _secret_file(path: Path) -> str:
    """A random secret kept in the data directory, readable by the owner only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(pysecrets.token_urlsafe(32))
    path.chmod(0o600)
    return path.read_text().strip()


def issuer_webhook_secret(settings: Settings, issuer: str) -> str:
    """The key an issuer's webhooks are checked with; "" (every event refused) if none.

    Each issuer has its own, so an event signed for one is refused at the other's path.
    The sandbox gets keys made for it alone (check_settings refuses a configured one).
    """
    configured = settings.amex_webhook_secret if issuer == "amex" else settings.jcb_webhook_secret
    if configured is not None:
        return configured.get_secret_value()
    if settings.uses_sandbox(issuer):
        return _secret_file(settings.data_dir / f"sandbox-webhook-secret-{issuer}")
    return ""


def sandbox_control_key(settings: Settings) -> str:
    """The ``X-Sandbox-Key`` the mounted sandbox's control API asks for."""
    return _secret_file(settings.data_dir / SANDBOX_CONTROL_KEY_FILE)


def service_token(settings: Settings) -> str:
    """The assistant's own bearer token; shared by every process through the data directory."""
    if settings.service_token is not None:
        return settings.service_token.get_secret_value()
    return _secret_file(settings.data_dir / "service-token")


def issuer_sites(settings: Settings) -> dict[str, IssuerInfoOut]:
    amex = settings.member_site_url("amex")
    jcb = settings.member_site_url("jcb")
    return {
        "amex": IssuerInfoOut(
            issuer=Issuer.AMEX,
            member_site_url=f"{amex}/login",
            card_registration_url=f"{amex}/settings/cards",
            external_services_url=f"{amex}/settings/services",
        ),
        "jcb": IssuerInfoOut(issuer=Issuer.JCB, member_site_url=f"{jcb}/login"),
    }


def member_sites_with_way_back(settings: Settings) -> list[str]:
    """The member sites that show a link back to renkei when a link gives them one: the
    simulated issuers' (``return_to`` on renkei's own origin). A real issuer's site is
    told nothing of renkei's pages."""
    if not settings.sandbox_on:
        return []
    return [
        settings.member_site_url(name)
        for name in ("amex", "jcb")
        if getattr(settings, f"{name}_member_site_url") is None
    ]


def secret_keys(settings: Settings) -> list[str]:
    if settings.secret_keys is not None:
        return [k.strip() for k in settings.secret_keys.get_secret_value().split(",") if k.strip()]
    return load_or_create_key_file(settings.data_dir / "secret-keys")


def build_runtime(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> Runtime:
    # Statements and encrypted secrets live here: the owner's alone.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    engine = make_engine(settings.resolved_database_url())
    distributed = (
        ProcrastinateJobs(settings.resolved_database_url(), worker_timing(settings))
        if engine.dialect.name == "postgresql"
        else None
    )
    sessions = make_sessions(engine, distributed)
    configs = {
        name: IssuerConfig(
            base_url=settings.issuer_base_url(name),
            client_id=getattr(settings, f"{name}_client_id"),
            client_secret=getattr(settings, f"{name}_client_secret").get_secret_value(),
            timeout=settings.issuer_timeout,
            max_retries=settings.issuer_max_retries,
            backoff_base=settings.issuer_backoff,
        )
        for name in ("amex", "jcb")
    }
    in_process = {n: c for n, c in configs.items() if settings.uses_sandbox(n)}
    remote = {n: c for n, c in configs.items() if not settings.uses_sandbox(n)}
    gateways: dict[Issuer, IssuerGateway] = {}
    for name, gateway in {
        **build_gateways(in_process, transport),
        **build_gateways(remote),
    }.items():
        gateways[Issuer(name)] = gateway
    # The assistant hears the back end's events like any subscriber, in process.
    assistant_events = settings.public_url.rstrip("/") + EVENTS_PATH
    new_work = asyncio.Event()  # wakes this process's runner after a commit queued work
    box = FernetSecretBox(secret_keys(settings), reload=lambda: secret_keys(settings))
    services = ServiceContext(
        uow=lambda: SqlUnitOfWork(sessions, new_work.set),
        gateways=gateways,
        secrets=box,
        oauth_redirect_uri=settings.oauth_redirect_uri,
        webhook_urls=[*settings.subscriber_urls, assistant_events],
        sync_lease=dt.timedelta(seconds=settings.sync_lease_seconds),
    )

    runner = _job_runner(settings, services, sessions, distributed, transport, new_work)
    backend_http = connect(settings.public_url, service_token(settings), transport=transport)
    conversation_store = SqlConversationStore(engine)
    engine_of_flows = FlowEngine(
        ALL_FLOWS,
        conversation_store,
        lambda user: BackendClient(backend_http, act_as=user),
        label=choice_label,
        say=reply_text,
        clock=services.clock,
        handoffs=conversation_store,
        support_route=lambda: support_route(settings),
    )
    return Runtime(
        settings,
        engine,
        sessions,
        services,
        runner,
        KeyWatcher(engine, box, settings.key_check_seconds),
        SqlTokenStore(sessions),
        Conversations(engine_of_flows),
        conversation_store,
        backend_http,
        new_work,
    )


def support_route(settings: Settings) -> bool:
    """Whether a handoff reaches a person: Slack's support channel, or the support page
    (whoever holds the support administrators' token signs in there)."""
    slack = slack_config(settings)
    return bool(slack.enabled and slack.support_channel) or settings.admin_token is not None


def api_edge() -> ApiEdge:
    """The API's caller, flood guards and error documentation, lent to the assistant."""
    return ApiEdge(
        caller=get_principal,
        conversation_limit=limited(CONVERSATIONS),
        demo_session_limit=limited(DEMO_SESSIONS),
        error_responses=error_responses,
    )


def slack_config(settings: Settings) -> SlackConfig:
    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    return SlackConfig(
        signing_secret=secret(settings.slack_signing_secret),
        api_url=settings.slack_api_url,
        public_url=settings.public_url,
        bot_token=secret(settings.slack_bot_token),
        app_token=secret(settings.slack_app_token),
        client_id=settings.slack_client_id,
        client_secret=secret(settings.slack_client_secret),
        support_channel=settings.slack_support_channel,
        stop_link_urls={
            issuer: site.external_services_url
            for issuer, site in issuer_sites(settings).items()
            if site.external_services_url
        },
    )


def slack_ports(runtime: Runtime, config: SlackConfig) -> SlackPorts:
    """The Slack front end's adapters, on this runtime's database."""
    installations, states = None, None
    if config.oauth and config.client_id is not None:
        # Imported only for bolt's OAuth flow: it needs slack_sdk.
        from backend.db.slack_installations import SqlInstallationStore, SqlOAuthStateStore

        installations = SqlInstallationStore(
            runtime.sessions, config.client_id, runtime.services.secrets
        )
        states = SqlOAuthStateStore(runtime.sessions)
    return SlackPorts(
        conversations=runtime.conversations,
        store=SqlSlackStore(runtime.sessions, runtime.services.clock, runtime.wake.set),
        directory=SqlDirectory(runtime.sessions),
        handoffs=runtime.conversation_store,
        backend_http=runtime.backend_http,
        installations=installations,
        oauth_states=states,
        observe_ack=observe_slack_ack,
        deferred=SqlDeferredRequests(
            lambda: SqlUnitOfWork(runtime.sessions, runtime.wake.set),
            runtime.services.secrets,
            runtime.services.clock,
        ),
    )


def add_slack_work(runtime: Runtime, config: SlackConfig, ports: SlackPorts) -> None:
    """Slack's jobs on this process's runner; a handoff written here queues its routing."""
    work = background_work(config, ports)
    for kind, handler in work.handlers.items():
        runtime.runner.add_handler(kind, handler)
    runtime.runner.add_upkeep(work.upkeep)
    runtime.conversation_store.on_handoff = ports.store.queue_handoff_routing


async def run_worker(settings: Settings, name: str) -> None:
    """A worker process (``renkei worker``): background work only, until SIGTERM."""
    runtime = build_runtime(settings, None)
    runner = runtime.runner
    try:
        if not isinstance(runner, ProcrastinateJobs):
            raise SettingsError(
                "renkei worker runs background work on PostgreSQL: set DATABASE_URL to "
                "postgresql+psycopg://…; the embedded SQLite runs it inside renkei serve."
            )
        await runtime.keys.check()
        runtime.keys.start()
        slack = slack_config(settings)
        if slack.enabled:  # the work after the acks of every web process, and notices
            add_slack_work(runtime, slack, slack_ports(runtime, slack))
        await runner.run_worker(name=name, signals=True)
    finally:
        await runner.stop()
        await runtime.keys.stop()
        await runtime.backend_http.aclose()
        await runtime.engine.dispose()


@asynccontextmanager
async def job_admin(settings: Settings) -> AsyncIterator[SqlJobStore | ProcrastinateJobs]:
    """What ``renkei jobs`` lists, retries and cancels: the runner's own jobs."""
    if not settings.database_url:  # the embedded database lives in the data directory
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url())
    try:
        await migrate(engine)  # as the token commands do: a fresh database has no jobs yet
        if engine.dialect.name == "postgresql":
            jobs = ProcrastinateJobs(settings.resolved_database_url())
            await jobs.open()
            try:
                yield jobs
            finally:
                await jobs.close()
        else:
            yield SqlJobStore(make_sessions(engine))
    finally:
        await engine.dispose()


def worker_timing(settings: Settings) -> Timing:
    return Timing(
        heartbeat=settings.worker_heartbeat_seconds,
        stalled_after=settings.worker_stalled_seconds,
        recover_cron=settings.worker_recover_cron,
        concurrency=settings.worker_concurrency,
    )


def _job_runner(
    settings: Settings,
    services: ServiceContext,
    sessions: async_sessionmaker[AsyncSession],
    distributed: ProcrastinateJobs | None,
    transport: httpx.AsyncBaseTransport | None,
    new_work: asyncio.Event,
) -> InProcessRunner | ProcrastinateJobs:
    """The same work for either runner: syncs, scheduled syncs, outbox deliveries."""
    interval = dt.timedelta(minutes=settings.sync_interval_minutes)

    async def sync(account_id: str) -> object:
        result = await sync_account(services, account_id)
        if result.status == "already_running":
            # A sync-now, or a sync whose process died and whose lease has not run out
            # yet: this job's webhook may have brought more, so it runs once the lease is
            # free instead of being dropped.
            raise RetryLater(min(services.sync_lease.total_seconds(), 60.0), "already_running")
        return result

    async def schedule() -> int:
        # Consents near their end are warned on the same schedule (14, 7 and 1 days).
        await run_consent_expiry_check(services)
        return await job_kinds.schedule_periodic_syncs(services, interval)

    store = SqlJobStore(sessions)
    sender = _sender(settings, transport)
    outgoing = webhook_secret(settings)
    if distributed is not None:
        distributed.bind(Work(sync, schedule, store, sender, outgoing, services.clock, Retention()))
        return distributed

    async def run_sync(payload: dict[str, Any]) -> object:
        return await sync(str(payload["account_id"]))

    return InProcessRunner(
        store,
        {job_kinds.SYNC_ACCOUNT: run_sync},
        sender=sender,
        webhook_secret=outgoing,
        clock=services.clock,
        schedule=schedule,
        wake=new_work,
        observe=observe_job,
    )


def webhook_secret(settings: Settings) -> str:
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    return _secret_file(settings.data_dir / "webhook-secret")


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings of outgoing deliveries, built once per process: a client left to
    build its own loads the whole CA bundle, tens of milliseconds of CPU on every
    delivery, more than the rest of the delivery."""
    return httpx.create_ssl_context()


def _sender(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> outbox.Sender:
    """Deliveries to this very service go in process; the others over HTTP."""
    own = settings.public_url.rstrip("/") + "/"

    async def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        inside = transport if url.startswith(own) else None
        async with httpx.AsyncClient(timeout=10, transport=inside, verify=_tls()) as client:
            response = await client.post(url, content=body, headers=headers)
            return response.status_code

    return send


def _owner_only_database_files(settings: Settings) -> None:
    if settings.database_url:
        return
    database = settings.data_dir / "renkei.sqlite3"
    for path in (database, *database.parent.glob(database.name + "-*")):
        if path.exists():
            os.chmod(path, 0o600)


def create_app(settings: Settings | None = None, *, start_jobs: bool | None = None) -> FastAPI:
    """The whole service: API, OAuth callback, issuer webhooks, sandbox, job runner."""
    settings = settings or Settings()
    check_settings(settings)
    log_redaction.install()
    holder: dict[str, Runtime] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = holder["runtime"]
        await migrate(runtime.engine)
        _owner_only_database_files(settings)
        # Seal with the key the database names before anything is written, then follow it.
        await runtime.keys.check()
        runtime.keys.start()
        if settings.demo_on:
            await seed_demo(runtime, sandbox_control_key(settings))
        run_jobs = settings.run_jobs if start_jobs is None else start_jobs
        if isinstance(runtime.runner, ProcrastinateJobs):
            await runtime.runner.open()  # web processes queue and settle jobs through it
        if run_jobs:
            runtime.runner.start()
        try:
            yield
        finally:
            await runtime.runner.stop()
            await runtime.keys.stop()
            await runtime.backend_http.aclose()
            await runtime.engine.dispose()

    app = FastAPI(
        title="renkei",
        version="0.1.0",
        description="Card-link service: Amex and JCB statements by issuer API, with every "
        "rule of the card issuers enforced.",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, without a CDN
        redoc_url=None,
    )
    app.add_middleware(SecurityHeaders)
    transport = httpx.ASGITransport(app=app)
    runtime = build_runtime(settings, transport)
    holder["runtime"] = runtime
    app.state.runtime = runtime
    app.state.services = runtime.services
    app.state.admin_token = (
        settings.admin_token.get_secret_value() if settings.admin_token else None
    )
    app.state.token_resolver = runtime.tokens
    app.state.parse_statement_file = functools.partial(
        parse_statement_file, max_rows=settings.max_upload_rows
    )
    app.state.issuer_webhook_secrets = {
        name: issuer_webhook_secret(settings, name) for name in ("amex", "jcb")
    }
    app.state.service_token = service_token(settings)
    app.state.webhook_secret = webhook_secret(settings)
    app.state.conversations = runtime.conversations
    app.state.token_store = runtime.tokens
    app.state.demo_user = OWNER if settings.demo_on else None
    app.state.public_url = settings.public_url
    app.state.export_secret = _secret_file(settings.data_dir / "export-secret")
    app.state.issuer_sites = issuer_sites(settings)
    app.state.member_sites_with_way_back = member_sites_with_way_back(settings)
    install_error_handlers(app)
    install_rate_limits(
        app,
        RateLimits(
            settings.rate_limit_storage_url,
            settings_limits(settings.model_dump()),
            namespace=settings.rate_limit_namespace,
        ),
    )
    edge = api_edge()
    app.include_router(create_api_router())
    app.include_router(conversation_router(edge))
    app.include_router(backend_events_router)
    install_web_chat(app, edge)
    install_docs(app)
    slack = slack_config(settings)
    ports = slack_ports(runtime, slack)
    install_slack(app, slack, ports)
    if slack.enabled:  # this process's runner carries out Slack's work queued anywhere
        add_slack_work(runtime, slack, ports)
    install_operations(app, runtime)

    @app.get(
        "/healthz",
        tags=["health"],
        summary="200 once the database answers",
        responses={503: {"description": "The database does not answer."}},
    )
    async def healthz() -> JSONResponse:
        healthy = await ping(runtime.engine)
        return JSONResponse({"status": "ok" if healthy else "unavailable"}, 200 if healthy else 503)

    if settings.sandbox_on:
        _mount_sandbox(app, settings, transport)
    else:
        for name in ("amex", "jcb"):
            if not app.state.issuer_webhook_secrets[name]:
                log.warning(
                    "RENKEI_%s_WEBHOOK_SECRET is not set: %s webhooks are refused",
                    name.upper(),
                    name,
                )
    _install_limits(app, request_limits(settings))
    return app


def request_limits(settings: Settings) -> RequestLimits:
    return RequestLimits(
        upload_bytes=settings.max_upload_bytes,
        webhook_bytes=settings.max_webhook_bytes,
        json_bytes=settings.max_json_bytes,
        json_depth=settings.max_json_depth,
        json_keys=settings.max_json_keys,
    )


def _install_limits(app: FastAPI, limits: RequestLimits) -> None:
    app.state.request_limits = limits
    # Added last, run first: the request id wraps everything, the body limits all routes.
    app.add_middleware(BodyLimits, limits=limits, respond=too_large_response)
    app.add_middleware(RequestContext)
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_limits(plain_openapi(), limits)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_sandbox(app: FastAPI, settings: Settings, transport: httpx.AsyncBaseTransport) -> None:
    from sandbox import ClientRegistration
    from sandbox import create_app as create_sandbox

    clients = [
        ClientRegistration(
            client_id=settings.amex_client_id,
            client_secret=settings.amex_client_secret.get_secret_value(),
            redirect_uris=[settings.oauth_redirect_uri],
            name="renkei",
            webhook_url=f"{settings.public_url.rstrip('/')}/api/v1/issuer-webhooks/{{issuer}}",
            webhook_secrets={
                name: issuer_webhook_secret(settings, name) for name in ("amex", "jcb")
            },
        )
    ]
    sandbox_app = create_sandbox(
        clients=clients,
        control_key=sandbox_control_key(settings),
        webhook_transport=transport,
        page_rate_limit=settings.rate_limit_sandbox_pages,
        rate_limit_storage_url=settings.rate_limit_storage_url,
        rate_limit_namespace=f"{settings.rate_limit_namespace}:sandbox",
        state_file=settings.data_dir / SANDBOX_STATE_FILE,
    )
    app.state.sandbox = sandbox_app
    for route in sandbox_app.routes:
        app.router.routes.append(route)
