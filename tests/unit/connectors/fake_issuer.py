"""A scripted issuer behind ``httpx.MockTransport`` for the connector's unit tests."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx

from backend.service.ports import TokenSet
from connectors.issuers import AmexGateway, IssuerConfig

BASE = "https://issuer.test/sandbox/amex"
Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]

CARD = {
    "card_id": "amex-biz-1001",
    "product": "amex_business",
    "masked_number": "XXXX-XXXXXX-11001",
    "holder_name": "YAMADA TARO",
    "role": "basic",
    "basic_card_id": None,
    "status": "active",
    "replaced_by": None,
}
TXN = {
    "transaction_id": "t1",
    "card_id": "amex-biz-1001",
    "use_date": "2026-01-02",
    "posted_date": None,
    "merchant": "SHOP",
    "amount_jpy": 1200,
    "foreign_amount": "8.01",
    "foreign_currency": "USD",
    "status": "pending",
    "holder_name": "YAMADA TARO",
}


def metadata() -> dict[str, Any]:
    return {
        "issuer": BASE,
        "authorization_endpoint": f"{BASE}/oauth/authorize",
        "token_endpoint": f"{BASE}/oauth/token",
        "revocation_endpoint": f"{BASE}/oauth/revoke",
        "code_challenge_methods_supported": ["S256"],
    }


def token_answer(
    access: str = "at-new-0000000000000000000", refresh: str = "rt-new-0000000000000000000"
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 900,
            "refresh_token": refresh,
            "scope": "statements",
        },
    )


class FakeIssuer:
    """Answers queued per path; a path with an empty queue answers its default."""

    def __init__(self) -> None:
        self.queued: dict[str, deque[Answer]] = defaultdict(deque)
        self.defaults: dict[str, Answer] = {
            "/.well-known/oauth-authorization-server": httpx.Response(200, json=metadata()),
            "/oauth/token": token_answer(),
            "/oauth/revoke": httpx.Response(200),
            "/api/v1/me": httpx.Response(
                200, json={"subject": "user_good", "subject_kind": "single", "cards": [CARD]}
            ),
            "/api/v1/link": httpx.Response(200, json={"status": "active"}),
            "/api/v1/transactions/sync": httpx.Response(
                200,
                json={
                    "added": [TXN],
                    "modified": [],
                    "removed": [],
                    "next_cursor": "c1",
                    "has_more": False,
                },
            ),
            "/legacy/login": httpx.Response(200, json={"session": "sess-1"}),
            "/legacy/statements": httpx.Response(
                200,
                json={
                    "cards": [CARD],
                    "statements": [{k: v for k, v in TXN.items() if k != "transaction_id"}],
                },
            ),
        }
        self.requests: list[httpx.Request] = []

    def queue(self, path: str, *answers: Answer) -> None:
        self.queued[path].extend(answers)

    def calls(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == "/sandbox/amex" + path]

    def form(self, request: httpx.Request) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/sandbox/amex")
        answer = self.queued[path].popleft() if self.queued[path] else self.defaults.get(path)
        if answer is None:
            return httpx.Response(404, json={"error": "not_found"})
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        # a fresh copy: a Response's body can be read once per request
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class SavedTokens:
    def __init__(self) -> None:
        self.saved: list[TokenSet] = []

    async def __call__(self, tokens: TokenSet) -> None:
        self.saved.append(tokens)


def gateway(fake: FakeIssuer, sleep: SleepRecorder, **overrides: Any) -> AmexGateway:
    config = IssuerConfig(
        base_url=BASE,
        client_id="renkei",
        client_secret="s3cret-client",
        backoff_base=0.01,
        **overrides,
    )
    return AmexGateway(config, httpx.MockTransport(fake.handler), sleep=sleep)


def json_error(status: int, error: str, description: str = "", **headers: str) -> httpx.Response:
    body = {"error": error} | ({"error_description": description} if description else {})
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )
