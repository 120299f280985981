"""The composition root: settings in, a running renkei out. Only this module wires parts."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets as pysecrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.api.app import create_api_router, install_error_handlers
from backend.api.schemas import IssuerInfoOut
from backend.db.conversation_store import SqlConversationStore
from backend.db.engine import make_engine, make_sessions, migrate, ping
from backend.db.job_store import SqlJobStore
from backend.db.repository import SqlUnitOfWork
from backend.db.secret_keys import KeyWatcher
from backend.db.token_store import SqlTokenStore
from backend.domain.model import Issuer
from backend.jobs.runner import InProcessRunner
from backend.secrets import FernetSecretBox, load_or_create_key_file
from backend.service import jobs as job_kinds
from backend.service import outbox
from backend.service.context import ServiceContext
from backend.service.ports import IssuerGateway
from backend.service.sync import sync_account
from bot.api import router as conversation_router
from bot.backend_events import EVENTS_PATH
from bot.backend_events import router as backend_events_router
from bot.conversations import Conversations, choice_label
from bot.slack import install as install_slack
from bot.web import install as install_web_chat
from connectors.backend_client import BackendClient, connect
from connectors.issuers import IssuerConfig, build_gateways
from renkei import log_redaction
from renkei.demo import OWNER, seed_demo
from renkei.settings import Settings
from renkei.statement_files import parse_statement_file
from statemachine.engine import FlowEngine
from statemachine.flows import ALL_FLOWS

log = logging.getLogger("renkei")


@dataclass
class Runtime:
    """Everything a running renkei holds; built once per process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    services: ServiceContext
    runner: InProcessRunner
    keys: KeyWatcher
    tokens: SqlTokenStore
    conversations: Conversations
    backend_http: httpx.AsyncClient


def _secret_file(path: Path) -> str:
    """A random secret kept in the data directory, readable by the owner only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(pysecrets.token_urlsafe(32))
    path.chmod(0o600)
    return path.read_text().strip()


def issuer_webhook_secret(settings: Settings, issuer: str) -> str:
    configured = settings.amex_webhook_secret if issuer == "amex" else settings.jcb_webhook_secret
    if configured is not None:
        return configured.get_secret_value()
    # The mounted sandbox registers one client at both issuers, with one secret.
    return _secret_file(settings.data_dir / "issuer-webhook-secret")


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


def secret_keys(settings: Settings) -> list[str]:
    if settings.secret_keys is not None:
        return [k.strip() for k in settings.secret_keys.get_secret_value().split(",") if k.strip()]
    return load_or_create_key_file(settings.data_dir / "secret-keys")


def build_runtime(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> Runtime:
    # Statements and encrypted secrets live here: the owner's alone.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    engine = make_engine(settings.resolved_database_url())
    sessions = make_sessions(engine)
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
    )
    outgoing = webhook_secret(settings)

    async def run_sync(payload: dict[str, Any]) -> object:
        return await sync_account(services, str(payload["account_id"]))

    runner = InProcessRunner(
        SqlJobStore(sessions),
        {job_kinds.SYNC_ACCOUNT: run_sync},
        sender=_sender(settings, transport),
        webhook_secret=outgoing,
        clock=services.clock,
        sync_interval=dt.timedelta(minutes=settings.sync_interval_minutes),
        wake=new_work,
    )
    backend_http = connect(settings.public_url, service_token(settings), transport=transport)
    engine_of_flows = FlowEngine(
        ALL_FLOWS,
        SqlConversationStore(engine),
        lambda user: BackendClient(backend_http, act_as=user),
        label=choice_label,
        clock=services.clock,
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
        backend_http,
    )


def webhook_secret(settings: Settings) -> str:
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    return _secret_file(settings.data_dir / "webhook-secret")


def _sender(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> outbox.Sender:
    """Deliveries to this very service go in process; the others over HTTP."""
    own = settings.public_url.rstrip("/") + "/"

    async def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        inside = transport if url.startswith(own) else None
        async with httpx.AsyncClient(timeout=10, transport=inside) as client:
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
        if settings.seed_demo:
            await seed_demo(runtime)
        run_jobs = settings.run_jobs if start_jobs is None else start_jobs
        if run_jobs:
            runtime.runner.start()
        try:
            yield
        finally:
            if run_jobs:
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
    )
    transport = httpx.ASGITransport(app=app)
    runtime = build_runtime(settings, transport)
    holder["runtime"] = runtime
    app.state.runtime = runtime
    app.state.services = runtime.services
    app.state.admin_token = (
        settings.admin_token.get_secret_value() if settings.admin_token else None
    )
    app.state.token_resolver = runtime.tokens
    app.state.parse_statement_file = parse_statement_file
    app.state.issuer_webhook_secrets = {
        name: issuer_webhook_secret(settings, name) for name in ("amex", "jcb")
    }
    app.state.service_token = service_token(settings)
    app.state.webhook_secret = webhook_secret(settings)
    app.state.conversations = runtime.conversations
    app.state.token_store = runtime.tokens
    app.state.demo_user = OWNER if settings.seed_demo else None
    app.state.export_secret = _secret_file(settings.data_dir / "export-secret")
    app.state.issuer_sites = issuer_sites(settings)
    install_error_handlers(app)
    app.include_router(create_api_router())
    app.include_router(conversation_router)
    app.include_router(backend_events_router)
    install_web_chat(app)
    install_slack(app, runtime)

    @app.get("/healthz", tags=["health"], summary="200 once the database answers")
    async def healthz() -> JSONResponse:
        healthy = await ping(runtime.engine)
        return JSONResponse({"status": "ok" if healthy else "unavailable"}, 200 if healthy else 503)

    if settings.sandbox:
        _mount_sandbox(app, settings, transport)
    return app


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
            webhook_secret=issuer_webhook_secret(settings, "amex"),
        )
    ]
    sandbox_app = create_sandbox(clients=clients, webhook_transport=transport)
    app.state.sandbox = sandbox_app
    for route in sandbox_app.routes:
        app.router.routes.append(route)
