"""The ASGI apps: one per issuer, and both mounted under `/sandbox`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from sandbox import limits
from sandbox.control import build_control_router
from sandbox.faults import FaultInjector
from sandbox.legacy import build_legacy_router
from sandbox.member_site import build_member_router
from sandbox.oauth import build_oauth_router, metadata
from sandbox.pages import build_pages_router
from sandbox.persistence import SaveAfterRequest
from sandbox.rate_limits import DEFAULT_PAGE_LIMIT, PageLimiter, PageRateLimiter
from sandbox.resource_api import build_resource_router
from sandbox.security import SecurityHeaders
from sandbox.state import ISSUERS, ClientRegistration, SandboxState
from sandbox.web import render

ISSUER_LABELS = {"amex": "American Express", "jcb": "JCB"}


def create_issuer_app(
    issuer: Literal["amex", "jcb"],
    *,
    clients: list[ClientRegistration] | None = None,
    control_key: str | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    state: SandboxState | None = None,
    page_limiter: PageLimiter | None = None,
) -> FastAPI:
    """One simulated issuer, to be mounted at any prefix (e.g. ``/sandbox/amex``).

    Every link and metadata URL it produces includes the prefix it is mounted at.

    Args:
        issuer: ``"amex"`` or ``"jcb"``.
        clients: OAuth clients; ``None`` registers the demo client ``renkei-demo``.
            Ignored when ``state`` is given.
        control_key: If set, the control API requires it in ``X-Sandbox-Key``.
            Ignored when ``state`` is given.
        webhook_transport: httpx transport for webhook deliveries. Ignored when
            ``state`` is given.
        state: A state shared with the other issuer's app (one clock, one client
            registry); a new one is made if omitted.
        page_limiter: Counts the pages per client address (shared with the other
            issuer's app); a default one if omitted.

    Returns:
        A FastAPI app serving the contract of ``docs/issuer-api.md``.
    """
    if state is None:
        state = SandboxState(
            clients=clients, control_key=control_key, webhook_transport=webhook_transport
        )
    app = FastAPI(
        title=f"Sandbox issuer: {ISSUER_LABELS[issuer]}",
        description="Simulated issuer for renkei: OAuth, statements, legacy site, member site.",
        # No Swagger page: it loads its script from a CDN, which the pages' CSP refuses.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.sandbox = state
    app.include_router(build_oauth_router(state, issuer))
    app.include_router(build_pages_router(state, issuer))
    app.include_router(build_resource_router(state, issuer))
    app.include_router(build_legacy_router(state, issuer))
    app.include_router(build_member_router(state, issuer))
    app.include_router(build_control_router(state, issuer))
    app.add_middleware(FaultInjector, state=state, issuer=issuer)
    # Outside the fault injector: a fault's countdown is state too.
    app.add_middleware(SaveAfterRequest, state=state)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(PageRateLimiter, limiter=page_limiter or PageLimiter())
    limits.install(app)

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        return render(request, issuer, "index.html")

    return app


def create_app(
    *,
    clients: list[ClientRegistration] | None = None,
    control_key: str | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    page_rate_limit: str = DEFAULT_PAGE_LIMIT,
    rate_limit_storage_url: str = "memory://",
    rate_limit_namespace: str = "sandbox",
    state_file: Path | None = None,
) -> FastAPI:
    """Both simulated issuers in one app: Amex at ``/sandbox/amex``, JCB at ``/sandbox/jcb``.

    The two share one state (clock, settings, clients), seeded with the demo data
    on the first start. The app can be served alone or mounted at ``""`` in a bigger app.

    Args:
        clients: OAuth clients; ``None`` registers the demo client ``renkei-demo``.
        control_key: If set, the control API requires it in ``X-Sandbox-Key``.
        webhook_transport: httpx transport for webhook deliveries (e.g. an
            ``httpx.ASGITransport`` to deliver in-process).
        page_rate_limit: Pages per client address (a ``limits`` expression, or "off").
        rate_limit_storage_url: ``memory://``, or ``redis://host:port`` to share counts.
        rate_limit_namespace: Prefix of the counters in a shared storage.
        state_file: The SQLite file the issuers' state is kept in, read back at the
            next start; ``None`` keeps it in memory (tests that need no restart).

    Returns:
        The FastAPI app; its ``state.sandbox`` is the shared `SandboxState`.
    """
    state = SandboxState(
        clients=clients,
        control_key=control_key,
        webhook_transport=webhook_transport,
        state_file=state_file,
    )
    app = FastAPI(title="renkei sandbox issuers", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = state
    for issuer in ISSUERS:

        def rfc8414_metadata(request: Request, issuer: str = issuer) -> JSONResponse:
            # RFC 8414 §3: for an issuer with a path, the well-known part goes first.
            root = request.scope.get("root_path", "").rstrip("/")
            base = f"{request.url.scheme}://{request.url.netloc}{root}/sandbox/{issuer}"
            return JSONResponse(metadata(base))

        app.add_api_route(
            f"/.well-known/oauth-authorization-server/sandbox/{issuer}",
            rfc8414_metadata,
            include_in_schema=False,
        )
    limiter = PageLimiter(page_rate_limit, rate_limit_storage_url, namespace=rate_limit_namespace)
    for issuer in ISSUERS:
        app.mount(
            f"/sandbox/{issuer}",
            create_issuer_app(issuer, state=state, page_limiter=limiter),
        )
    app.add_middleware(SecurityHeaders)
    return app
