"""Fault injection per path: 500, 429 + Retry-After, slow, timeout, malformed JSON, N times."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.integration.sandbox.helpers import KEY, link_by_control

SYNC = "/api/v1/transactions/sync"


async def arm(client: httpx.AsyncClient, **fault: object) -> None:
    armed = await client.post(
        "/sandbox/amex/control/faults", headers=KEY, json={"path": SYNC, **fault}
    )
    assert armed.status_code == 201, armed.text


async def test_control_api_needs_the_key(client: httpx.AsyncClient) -> None:
    answer = await client.post("/sandbox/amex/control/reset")
    assert answer.status_code == 401
    wrong = await client.post("/sandbox/amex/control/reset", headers={"X-Sandbox-Key": "nope"})
    assert wrong.status_code == 401


async def test_500_for_n_requests_then_normal(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    await arm(client, kind="500", times=2)
    statuses = [
        (await client.get(f"/sandbox/amex{SYNC}", headers=linked.bearer)).status_code
        for _ in range(3)
    ]
    assert statuses == [500, 500, 200]
    # Other paths are untouched while a fault is armed.
    await arm(client, kind="500")
    assert (await client.get("/sandbox/amex/api/v1/me", headers=linked.bearer)).status_code == 200


async def test_after_lets_the_first_requests_through(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    await arm(client, kind="500", times=1, after=2)
    statuses = [
        (await client.get(f"/sandbox/amex{SYNC}", headers=linked.bearer)).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 500, 200]


async def test_429_carries_retry_after(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    await arm(client, kind="429", retry_after=7)
    limited = await client.get(f"/sandbox/amex{SYNC}", headers=linked.bearer)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"


async def test_slow_answers_late_but_correctly(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    await arm(client, kind="slow", delay=0.4)
    started = time.perf_counter()
    slow = await client.get(f"/sandbox/amex{SYNC}", headers=linked.bearer)
    assert time.perf_counter() - started >= 0.4
    assert slow.status_code == 200 and len(slow.json()["added"]) == 40


async def test_timeout_outlasts_the_client(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    await arm(client, kind="timeout", delay=20)
    started = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"/sandbox/amex{SYNC}", headers=linked.bearer, timeout=0.5)
    assert time.perf_counter() - started < 5
    assert (await client.get(f"/sandbox/amex{SYNC}", headers=linked.bearer)).status_code == 200


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    await arm(client, kind="malformed_json")
    broken = await client.get(f"/sandbox/amex{SYNC}", headers=linked.bearer)
    assert broken.status_code == 200
    assert broken.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        broken.json()


async def test_faults_can_be_listed_and_cleared(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    await arm(client, kind="500", times=5)
    listed = (await client.get("/sandbox/amex/control/faults", headers=KEY)).json()["faults"]
    assert [(f["path"], f["kind"], f["times"]) for f in listed] == [(SYNC, "500", 5)]
    await client.delete("/sandbox/amex/control/faults", headers=KEY)
    assert (await client.get(f"/sandbox/amex{SYNC}", headers=linked.bearer)).status_code == 200
    # Faults belong to one issuer.
    await arm(client, kind="500")
    jcb = await link_by_control(client, "jcb")
    assert (await client.get(f"/sandbox/jcb{SYNC}", headers=jcb.bearer)).status_code == 200
