"""Hostile input, over real HTTP: every request here is answered 4xx, small, in the error shape.

renkei runs on loopback with Slack on (a fake Web API). Each case is sent as an
attacker (or a broken client) would send it; none may reach a 500, a traceback, a
plain-text answer or an answer that echoes the request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.service.outbox import sign
from tests.e2e.conftest import ADMIN_TOKEN, running_renkei
from tests.e2e.test_slack import SECRET, signature
from tests.support.databases import database_url
from tests.support.fake_slack import fake_slack

MARKER = "zz-echo-marker-zz"


@dataclass
class Target:
    base_url: str
    data_dir: Path
    owner_token: str

    def secret(self, name: str) -> str:
        return (self.data_dir / name).read_text().strip()


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[Target]:
    data_dir = tmp_path / "data"
    with fake_slack() as fake, database_url("sqlite", tmp_path) as url:
        async with running_renkei(
            url,
            data_dir,
            slack_signing_secret=SECRET,
            slack_bot_token="xoxb-test-token",
            slack_api_url=fake.api_url,
        ) as renkei:
            yield Target(renkei.base_url, data_dir, (data_dir / "demo-token").read_text().strip())


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert len(response.content) < 16 * 1024, len(response.content)
    assert MARKER not in response.text
    body = response.json()
    error = body["error"]
    assert set(error) == {"code", "rule", "message", "details", "request_id"}, body
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert error["request_id"] and response.headers["x-request-id"] == error["request_id"]
    assert "Traceback" not in response.text
    result: dict[str, Any] = error
    return result


def slack_headers(body: bytes, *, content_type: str, secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time())
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(secret, ts, body.decode("utf-8", "replace")),
    }


def signed_slack(body: bytes, content_type: str) -> dict[str, str]:
    """Signed over the exact bytes (also when they are not UTF-8)."""
    import hashlib
    import hmac

    ts = int(time.time())
    mac = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
    }


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

UNSIGNED_SLACK: list[tuple[str, bytes, dict[str, str]]] = [
    (
        "non-integer timestamp",
        b"command=%2Frenkei&text=status",
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"},
    ),
    (
        "a float as timestamp",
        b"command=%2Frenkei",
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": "1.5e9", "X-Slack-Signature": "v0=0"},
    ),
    (
        "huge timestamp",
        b"command=%2Frenkei",
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "x"},
    ),
    ("no signature headers", b"payload=%7B", {"Content-Type": FORM}),
    (
        "malformed JSON in payload",
        b"payload=%7Bnot-json",
        slack_headers(b"payload=%7Bnot-json", content_type=FORM, secret="wrong"),
    ),
    ("invalid UTF-8", b"\xff\xfe\xfa", {"Content-Type": FORM, **{}}),
    (
        "JSON that is not an object",
        b"[1, 2, 3]",
        slack_headers(b"[1, 2, 3]", content_type=JSON, secret="wrong"),
    ),
    (
        "form body labelled JSON",
        b"command=%2Frenkei&text=x",
        slack_headers(b"command=%2Frenkei&text=x", content_type=JSON, secret="wrong"),
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "headers"), UNSIGNED_SLACK, ids=[c[0] for c in UNSIGNED_SLACK]
)
async def test_slack_without_a_valid_signature_is_401(
    target: Target, case: str, body: bytes, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        if case == "invalid UTF-8":
            headers = {
                **headers,
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=" + "0" * 64,
            }
        response = await client.post("/slack/events", content=body, headers=headers)
    assert_error_shape(response, 401)


async def test_slack_signature_header_that_is_not_ascii_is_401(target: Target) -> None:
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        response = await client.post(
            "/slack/events",
            content=b"command=x",
            headers=[
                (b"Content-Type", FORM.encode()),
                (b"X-Slack-Request-Timestamp", str(int(time.time())).encode()),
                (b"X-Slack-Signature", b"v0=\xff\xfe"),
            ],
        )
    assert_error_shape(response, 401)


SIGNED_MALFORMED_SLACK: list[tuple[str, bytes, str]] = [
    ("malformed JSON in payload", b"payload=%7Bnot-json", FORM),
    ("payload that is a JSON array", b"payload=%5B1%5D", FORM),
    ("invalid UTF-8", b"payload=\xff\xfe", FORM),
    ("JSON that is not an object", b"[1, 2, 3]", JSON),
    ("JSON string", b'"text"', JSON),
    ("form body labelled JSON", b"command=%2Frenkei&text=x", JSON),
    ("broken JSON sent as a form", b"{not json", FORM),
    ("deep JSON", b"[" * 100_000, JSON),
]


@pytest.mark.parametrize(
    ("case", "body", "content_type"),
    SIGNED_MALFORMED_SLACK,
    ids=[c[0] for c in SIGNED_MALFORMED_SLACK],
)
async def test_slack_signed_but_malformed_is_400(
    target: Target, case: str, body: bytes, content_type: str
) -> None:
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        response = await client.post(
            "/slack/events", content=body, headers=signed_slack(body, content_type)
        )
    assert_error_shape(response, 400)


BACKEND_EVENTS: list[tuple[str, bytes]] = [
    ("not JSON", b"{not json"),
    ("invalid UTF-8", b"\xff\xfe"),
    ("a JSON array", b"[]"),
    ("data that is not an object", b'{"type": "x", "data": 5}'),
    ("an account id that is not text", b'{"type": "x", "account_id": {"a": 1}}'),
    ("deep JSON", b"[" * 100_000),
]


@pytest.mark.parametrize(("case", "body"), BACKEND_EVENTS, ids=[c[0] for c in BACKEND_EVENTS])
async def test_backend_events_signed_but_malformed_is_400(
    target: Target, case: str, body: bytes
) -> None:
    header = sign(target.secret("webhook-secret"), int(time.time()), body)
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        response = await client.post(
            "/bot/backend-events", content=body, headers={"Renkei-Signature": header}
        )
    assert_error_shape(response, 400)


async def test_webhooks_without_a_valid_signature_are_401(target: Target) -> None:
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        for path, header in (
            ("/bot/backend-events", "Renkei-Signature"),
            ("/api/v1/issuer-webhooks/amex", "Issuer-Signature"),
        ):
            for value in (b"", b"t=abc,v1=00", b"t=1,v1=00", b"t=" + b"9" * 5000, b"v1=\xff"):
                response = await client.post(
                    path, content=b"[" * 1000, headers=[(header.encode(), value)]
                )
                assert_error_shape(response, 401)


async def test_issuer_webhook_signed_but_malformed_is_400(target: Target) -> None:
    secret = target.secret("sandbox-webhook-secret-amex")
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        for body in (b"{not json", b"[]", b'{"event_id": 5}', b"\xff", b"[" * 100_000):
            header = sign(secret, int(time.time()), body)
            response = await client.post(
                "/api/v1/issuer-webhooks/amex", content=body, headers={"Issuer-Signature": header}
            )
            assert_error_shape(response, 400)


def many_keys(count: int) -> bytes:
    return json.dumps({f"k{i}": MARKER for i in range(count)}).encode()


async def test_bodies_over_their_limit_are_413(target: Target) -> None:
    headers = {"Authorization": "Bearer a-token-of-no-office", "Content-Type": JSON}
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        started = time.monotonic()
        declared = await client.post("/api/v1/offices", content=many_keys(500_000), headers=headers)
        error = assert_error_shape(declared, 413)
        assert error["code"] == "payload_too_large"
        assert error["details"] == {"max_bytes": 1024 * 1024}

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"name": "'
            for _ in range(300):
                yield b"x" * 10_000

        try:
            streamed = await client.post("/api/v1/offices", content=chunks(), headers=headers)
        except httpx.TransportError:
            pass  # the server may close before the client has written everything
        else:
            assert_error_shape(streamed, 413)
        webhook = await client.post(
            "/api/v1/issuer-webhooks/amex", content=b"{" + b" " * (1024 * 1024 + 1) + b"}"
        )
        assert_error_shape(webhook, 413)
        assert time.monotonic() - started < 10


async def test_json_too_deep_or_with_too_many_keys_is_413(target: Target) -> None:
    headers = {"Authorization": f"Bearer {target.owner_token}", "Content-Type": JSON}
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        keys = await client.post("/api/v1/offices", content=many_keys(5000), headers=headers)
        assert assert_error_shape(keys, 413)["details"] == {"max_keys": 1000}
        for depth in (40, 100_000):
            deep = await client.post(
                "/api/v1/offices",
                content=b'{"name": ' + b"[" * depth + b"]" * depth + b"}",
                headers=headers,
            )
            assert assert_error_shape(deep, 413)["details"] == {"max_depth": 32}


async def test_validation_errors_are_bounded_and_never_echo_the_input(target: Target) -> None:
    headers = {"Authorization": f"Bearer {target.owner_token}", "Content-Type": JSON}
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        response = await client.post("/api/v1/offices", content=many_keys(900), headers=headers)
        error = assert_error_shape(response, 422)
        assert error["code"] == "validation_error"
        assert len(error["details"]["errors"]) <= 20
        assert error["details"]["truncated"] is True
        long_value = await client.post(
            "/api/v1/offices", json={"name": 5, "k" * 100_000: MARKER}, headers=headers
        )
        assert_error_shape(long_value, 422)
        broken = await client.post(
            "/api/v1/offices", content=b"{" + MARKER.encode(), headers=headers
        )
        assert_error_shape(broken, 422)
        not_utf8 = await client.post(
            "/api/v1/offices", content=b'{"name": "\xff"}', headers=headers
        )
        assert not_utf8.status_code in (400, 422)
        assert_error_shape(not_utf8, not_utf8.status_code)


async def test_routing_errors_are_in_the_error_shape(target: Target) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        assert_error_shape(await client.get("/no-such-page"), 404)
        assert_error_shape(await client.get("/api/v1/no-such-thing", headers=auth), 404)
        assert_error_shape(await client.get("/api/v1/issuer-webhooks/amex"), 405)
        assert_error_shape(await client.get("/bot/backend-events"), 405)
        assert_error_shape(await client.post("/api/v1/issuer-webhooks/visa"), 422)


async def test_an_upload_is_refused_before_it_is_read(target: Target) -> None:
    auth = {"Authorization": "Bearer a-token-of-no-office"}
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        files = {"file": ("big.csv", b"x" * (10 * 1024 * 1024 + 128 * 1024), "text/csv")}
        too_big = await client.post("/api/v1/accounts/any/statements/upload", files=files)
        assert_error_shape(too_big, 413)
        files = {"file": ("small.csv", b"x" * 1000, "text/csv")}
        stranger = await client.post(
            "/api/v1/accounts/any/statements/upload", files=files, headers=auth
        )
        assert_error_shape(stranger, 401)
        owner = {"Authorization": f"Bearer {target.owner_token}"}
        not_multipart = await client.post(
            "/api/v1/accounts/any/statements/upload", content=b"--x\r\n", headers=owner
        )
        assert not_multipart.status_code in (400, 404, 422)
        assert_error_shape(not_multipart, not_multipart.status_code)


async def test_the_sandbox_control_api_answers_small(target: Target) -> None:
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        big = await client.post("/sandbox/amex/control/users", content=many_keys(500_000))
        assert big.status_code == 413
        assert len(big.content) < 2048
        keys = await client.post(
            "/sandbox/amex/control/users",
            content=many_keys(900),
            headers={"Content-Type": JSON},
        )
        assert 400 <= keys.status_code < 500
        assert len(keys.content) < 4096 and MARKER not in keys.text
        # Under renkei's limits, over the sandbox's own.
        sandbox_alone = json.dumps({"user_id": "x" * 300_000}).encode()
        alone = await client.post(
            "/sandbox/jcb/control/users", content=sandbox_alone, headers={"Content-Type": JSON}
        )
        assert alone.status_code == 413 and len(alone.content) < 2048


async def test_an_upload_is_answered_before_its_body_is_sent(target: Target) -> None:
    """The caller and the account are checked first: the answer comes while the client
    has sent only the headers and the start of a 9 MB file."""
    host, port = target.base_url.removeprefix("http://").split(":")
    for token, status in (("a-token-of-no-office", 401), (target.owner_token, 404)):
        reader, writer = await asyncio.open_connection(host, int(port))
        head = (
            "POST /api/v1/accounts/no-such-account/statements/upload HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {9 * 1024 * 1024}\r\n\r\n"
            '--b\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n\r\n'
        )
        writer.write(head.encode() + b"x" * 1024)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        assert status_line.split()[1] == str(status).encode(), status_line
        writer.close()
