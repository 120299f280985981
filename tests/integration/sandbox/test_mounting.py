"""The issuer apps work under any mount prefix, alone or inside a bigger app."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from sandbox import create_app, create_issuer_app
from tests.integration.sandbox.helpers import parse, pkce
from tests.support.servers import serve_asgi


async def test_issuer_app_mounted_under_a_custom_prefix() -> None:
    host = FastAPI()

    @host.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    host.mount("/issuers/amex-test", create_issuer_app("amex"))
    with serve_asgi(host) as url:
        async with httpx.AsyncClient(timeout=30, base_url=url) as http:
            meta = (
                await http.get("/issuers/amex-test/.well-known/oauth-authorization-server")
            ).json()
            assert meta["issuer"] == f"{url}/issuers/amex-test"
            assert meta["token_endpoint"] == f"{url}/issuers/amex-test/oauth/token"
            _, challenge = pkce()
            login = await http.get(
                "/issuers/amex-test/oauth/authorize",
                params={
                    "response_type": "code",
                    "client_id": "renkei-demo",
                    "redirect_uri": "http://localhost:8000/api/v1/oauth/callback",
                    "state": "s",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
            )
            assert parse(login.text).forms[0].action == "/issuers/amex-test/oauth/authorize/login"
            member = await http.get("/issuers/amex-test/member/")
            to_login = "/issuers/amex-test/member/login?next=%2Fissuers%2Famex-test%2Fmember%2F"
            assert member.headers["location"] == to_login
            assert (await http.get("/health")).json() == {"status": "ok"}


async def test_create_app_mounted_at_the_root_of_another_app() -> None:
    host = FastAPI()

    @host.get("/api/v1/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    host.mount("", create_app())
    with serve_asgi(host) as url:
        async with httpx.AsyncClient(timeout=30, base_url=url) as http:
            assert (await http.get("/api/v1/ping")).json() == {"pong": True}
            meta = (await http.get("/sandbox/jcb/.well-known/oauth-authorization-server")).json()
            assert meta["issuer"] == f"{url}/sandbox/jcb"
            index = await http.get("/sandbox/jcb/")
            assert 'href="/sandbox/jcb/member/login"' in index.text
