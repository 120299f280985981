"""A small app around the API router: real SQLite storage, a scripted issuer."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from backend.api.app import create_api_router, install_error_handlers
from backend.api.deps import hash_token
from backend.db.engine import make_engine, make_sessions, migrate
from backend.db.repository import SqlUnitOfWork
from backend.domain.model import Issuer
from backend.secrets import FernetSecretBox
from backend.service.api_tokens import TokenRecord
from backend.service.context import ServiceContext
from backend.service.ports import (
    AuthorizationRequest,
    ConsentRevoked,
    GrantInfo,
    IssuerCard,
    IssuerName,
    IssuerStatement,
    LegacyStatements,
    LinkStatus,
    ParsedStatementGroup,
    RateLimited,
    StatementPage,
    TokenSaver,
    TokenSet,
)

ADMIN_TOKEN = "admin-token"
WEBHOOK_SECRET = "whsec-test"
ISSUER_ID = {"amex": "https://amex.issuer.test", "jcb": "https://jcb.issuer.test"}
AMEX_CARD = IssuerCard(
    card_ref="amex-1001",
    product="amex_business",
    masked_number="XXXX-XXXXXX-11001",
    holder_name="YAMADA TARO",
)


@dataclass
class ScriptedIssuer:
    """Just enough of an issuer for the REST layer's tests."""

    issuer: IssuerName = "amex"
    cards: tuple[IssuerCard, ...] = (AMEX_CARD,)
    link: str = "active"
    rate_limited: bool = False
    statements: list[IssuerStatement] = field(default_factory=list)
    # Runs at the start of each statements call (a test makes something happen mid-sync).
    before_page: Callable[[], Awaitable[None]] | None = None
    consent_revoked: bool = False

    def authorization_request(self, *, redirect_uri: str) -> AuthorizationRequest:
        state = secrets.token_urlsafe(8)
        return AuthorizationRequest(
            url=f"https://issuer.test/authorize?state={state}",
            state=state,
            code_verifier="v",
            issuer_identifier=ISSUER_ID[self.issuer],
        )

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        return TokenSet(access_token="at", refresh_token="rt", expires_at=None)

    async def grant_info(self, tokens: TokenSet, save: TokenSaver) -> GrantInfo:
        return GrantInfo(subject="amex-user", subject_kind="single", cards=self.cards)

    async def sync_statements(
        self, tokens: TokenSet, save: TokenSaver, cursor: str | None, *, count: int = 500
    ) -> StatementPage:
        if self.before_page is not None:
            await self.before_page()
        if self.consent_revoked:
            raise ConsentRevoked("link stopped", issuer=self.issuer)
        if self.rate_limited:
            raise RateLimited("slow down", issuer=self.issuer, retry_after=7)
        return StatementPage(tuple(self.statements), (), (), "c1", has_more=False)

    async def link_status(self, tokens: TokenSet, save: TokenSaver) -> LinkStatus:
        return LinkStatus(status=self.link)  # type: ignore[arg-type]

    async def revoke(self, tokens: TokenSet) -> None:
        return None

    async def legacy_fetch(self, login_id: str, password: str) -> LegacyStatements:
        return LegacyStatements(cards=list(self.cards))


class Tokens:
    """The token store's protocol in memory: one token per member, ``tok-<email>``."""

    def __init__(self) -> None:
        self.by_hash: dict[str, TokenRecord] = {}

    def issue(self, email: str) -> str:
        token = "tok-" + email
        if hash_token(token) not in self.by_hash:
            self.by_hash[hash_token(token)] = TokenRecord(
                id="id-" + email,
                email=email,
                name="test",
                created_at=dt.datetime.now(dt.UTC),
                expires_at=None,
                revoked_at=None,
            )
        return token

    async def lookup(self, token_hash: str) -> TokenRecord | None:
        return self.by_hash.get(token_hash)

    async def list_for(self, email: str) -> list[TokenRecord]:
        return [r for r in self.by_hash.values() if r.email == email]

    async def revoke(self, token_id: str, *, email: str | None = None) -> TokenRecord | None:
        for key, record in self.by_hash.items():
            if record.id == token_id and email in (None, record.email):
                if record.revoked_at is None:
                    record = dataclasses.replace(record, revoked_at=dt.datetime.now(dt.UTC))
                    self.by_hash[key] = record
                return record
        return None


def parse_statement_file(data: bytes, issuer: str) -> list[ParsedStatementGroup]:
    """Test format: one ``date,merchant,amount`` line per statement, all for AMEX_CARD."""
    rows = []
    for number, line in enumerate(data.decode().splitlines()):
        day, merchant, amount = line.split(",")
        rows.append(
            IssuerStatement(
                transaction_id=None,
                card_ref=AMEX_CARD.card_ref,
                use_date=dt.date.fromisoformat(day),
                posted_date=None,
                merchant=f"{merchant}-{number}",
                amount_jpy=int(amount),
            )
        )
    return [ParsedStatementGroup(key=AMEX_CARD.masked_number, rows=tuple(rows))]


@dataclass
class Harness:
    client: httpx.AsyncClient
    app: FastAPI
    amex: ScriptedIssuer
    tokens: Tokens

    def auth(self, email: str | None = None) -> dict[str, str]:
        token = ADMIN_TOKEN if email is None else self.tokens.issue(email)
        return {"Authorization": f"Bearer {token}"}

    async def bind(self, start: dict[str, Any], who: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The member's signed-in browser opens the start link: the state of the issuer's
        URL, and the headers the browser's cookie adds to the callback."""
        start_id = start["authorization_url"].rsplit("/", 1)[1]
        r = await self.client.post(f"/api/v1/oauth/start/{start_id}/signed-in", headers=who)
        assert r.status_code == 200, r.text
        state = parse_qs(urlparse(r.json()["issuer_url"]).query)["state"][0]
        cookie = next(c for c in r.headers.get_list("set-cookie") if "renkei_consent_" in c)
        return state, {"Cookie": cookie.split(";", 1)[0]}

    async def callback(
        self, start: dict[str, Any], who: dict[str, str], *, json: bool = False, **params: str
    ) -> httpx.Response:
        """Back from the issuer in the member's browser, as the issuer sends it."""
        state, headers = await self.bind(start, who)
        if json:
            headers["Accept"] = "application/json"
        query = {"state": state, "iss": ISSUER_ID["amex"], **params}
        return await self.client.get("/api/v1/oauth/callback", params=query, headers=headers)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Harness]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    await migrate(engine)
    sessions = make_sessions(engine)
    amex = ScriptedIssuer()
    services = ServiceContext(
        uow=lambda: SqlUnitOfWork(sessions),
        gateways={Issuer.AMEX: amex, Issuer.JCB: ScriptedIssuer(issuer="jcb")},
        secrets=FernetSecretBox([Fernet.generate_key().decode()]),
        oauth_redirect_uri="http://test/api/v1/oauth/callback",
    )
    app = FastAPI()
    tokens = Tokens()
    app.state.services = services
    app.state.admin_token = ADMIN_TOKEN
    app.state.token_resolver = tokens
    app.state.parse_statement_file = parse_statement_file
    app.state.issuer_webhook_secrets = {"amex": WEBHOOK_SECRET}
    install_error_handlers(app)
    app.include_router(create_api_router())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Harness(client, app, amex, tokens)
    await engine.dispose()
