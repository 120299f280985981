"""renkei as ``renkei serve`` builds it, driven in process: its sandbox, its services.

The figures that measure the back end call its use cases directly (``sync_account``)
so that they time the service and the database, with the issuer reached through the
in-process transport exactly as in the embedded default.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from backend.db import tables as t
from backend.domain.model import Issuer
from backend.service.consent_binding import bind_signed_in
from backend.service.context import Principal, ServiceContext
from backend.service.linking import complete_authorization, register_api_account
from renkei.bootstrap import Runtime, create_app, sandbox_control_key
from renkei.demo import OWNER, SHOP
from renkei.settings import Settings

PUBLIC_URL = "http://renkei.bench"
BENCH_USER = "bench_user"
BENCH_PASSWORD = "pass_good"


class BenchSetupError(Exception):
    """The embedded service refused a step of the set-up."""


@dataclass
class Embedded:
    """A running embedded renkei: its app, its runtime and an in-process HTTP client."""

    app: FastAPI
    runtime: Runtime
    http: httpx.AsyncClient

    @property
    def services(self) -> ServiceContext:
        return self.runtime.services

    async def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """The Amex sandbox's control API."""
        response = await self.http.post(f"/sandbox/amex/control{path}", json=body or {})
        if not response.is_success:
            raise BenchSetupError(f"control {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    async def shop_office_id(self) -> str:
        async with self.runtime.sessions() as session:
            found = await session.scalar(select(t.offices.c.id).where(t.offices.c.name == SHOP))
        if found is None:
            raise BenchSetupError("the demo office is missing")
        return str(found)

    async def statement_count(self, account_id: str) -> int:
        async with self.runtime.sessions() as session:
            counted = await session.scalar(
                select(func.count())
                .select_from(t.statements)
                .where(t.statements.c.account_id == account_id)
            )
        return int(counted or 0)

    async def link_card(self, card_ref: str, statements: int) -> str:
        """A new Amex API account linked to a new sandbox card holding ``statements``.

        The statements are set before the link exists, so no issuer webhook fires; the
        link is made as the OAuth callback makes it (``complete_authorization``), with
        the code from the control API instead of the consent pages.

        Returns:
            The account's id, not synced yet.
        """
        users = await self.http.post(
            "/sandbox/amex/control/users",
            json={"user_id": BENCH_USER, "password": BENCH_PASSWORD},
        )
        if users.status_code not in (200, 201):
            raise BenchSetupError(f"control /users: {users.status_code} {users.text}")
        await self.control(
            "/cards",
            {
                "user_id": BENCH_USER,
                "card_id": card_ref,
                "product": "amex_business",
                "holder_name": "BENCH TARO",
            },
        )
        await self.control(f"/cards/{card_ref}/statements", {"count": statements, "pending": 0})
        ctx = self.services
        owner = Principal(OWNER)
        start = await register_api_account(
            ctx,
            owner,
            office_id=await self.shop_office_id(),
            issuer=Issuer.AMEX,
            name=f"bench {card_ref}",
        )
        settings = self.runtime.settings
        answer = await self.control(
            "/authorize",
            {
                "client_id": settings.amex_client_id,
                "redirect_uri": settings.oauth_redirect_uri,
                "user_id": BENCH_USER,
                "state": start.state,
                "code_challenge": httpx.URL(start.issuer_url).params["code_challenge"],
                "card_ids": [card_ref],
            },
        )
        # As the member's signed-in browser does: bind, then come back with the cookie.
        start_id = start.authorization_url.rsplit("/", 1)[1]
        binding = await bind_signed_in(ctx, owner, start_id)
        outcome = await complete_authorization(
            ctx,
            state=start.state,
            code=str(answer["code"]),
            error=None,
            iss=ctx.gateway(Issuer.AMEX)
            .authorization_request(redirect_uri=settings.oauth_redirect_uri)
            .issuer_identifier,
            browser_key=binding.browser_key,
        )
        if outcome.error_code is not None:
            raise BenchSetupError(f"linking refused: {outcome.error_code}")
        return start.account_id


def bench_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings of an embedded renkei for a benchmark: demo data, no job runner, no Slack."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "public_url": PUBLIC_URL,
        "seed_demo": True,
        "run_jobs": False,
        "slack_bot_token": None,
        "slack_signing_secret": None,
        "slack_client_id": None,
        "slack_client_secret": None,
        # A benchmark floods on purpose: the rate limits would cut it short.
        "rate_limit_conversations": "off",
        "rate_limit_consents": "off",
        "rate_limit_uploads": "off",
        "rate_limit_sandbox_pages": "off",
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def embedded_renkei(
    database_url: str, data_dir: Path, *, jobs: bool = False, **overrides: Any
) -> AsyncIterator[Embedded]:
    """renkei built by ``create_app``, its lifespan entered; its job runner only if ``jobs``."""
    logging.getLogger("renkei").setLevel(logging.WARNING)
    settings = bench_settings(database_url, data_dir, run_jobs=jobs, **overrides)
    app = create_app(settings, start_jobs=jobs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        key = {"X-Sandbox-Key": sandbox_control_key(settings)}  # the control API's
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL, headers=key) as http:
            yield Embedded(app, app.state.runtime, http)
