"""Statement sync: paging, added/modified/removed, JCB delay (R9), upgrades (R7), large counts."""

from __future__ import annotations

import base64
import json
import time

import httpx

from tests.integration.sandbox.helpers import KEY, Link, link_by_control, sync_all


async def get_sync(client: httpx.AsyncClient, linked: Link, **params: str | int) -> httpx.Response:
    return await client.get(
        f"/sandbox/{linked.issuer}/api/v1/transactions/sync",
        params=params,
        headers=linked.bearer,
    )


async def test_first_sync_pages_through_the_demo_statements(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    pages = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"count": 15}
        if cursor:
            params["cursor"] = cursor
        body = (await get_sync(client, linked, **params)).json()
        pages.append(body)
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    assert [len(page["added"]) for page in pages] == [15, 15, 10]
    added = [txn for page in pages for txn in page["added"]]
    assert len({txn["transaction_id"] for txn in added}) == 40
    statuses = [txn["status"] for txn in added]
    assert statuses.count("pending") == 3 and statuses.count("confirmed") == 37
    assert all(txn["posted_date"] is None for txn in added if txn["status"] == "pending")
    assert {txn["card_id"] for txn in added} == {"amex-biz-1001"}
    assert [txn["use_date"] for txn in added] == sorted(txn["use_date"] for txn in added)
    again = (await get_sync(client, linked, cursor=cursor)).json()
    assert (again["added"], again["modified"], again["removed"], again["has_more"]) == (
        [],
        [],
        [],
        False,
    )


async def test_confirmed_pending_and_cancelled_statements(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-gold-2001"])
    first, cursor = await sync_all(client, linked)
    pending_ids = {t["transaction_id"] for t in first["added"] if t["status"] == "pending"}
    assert len(pending_ids) == 3

    confirmed = await client.post("/sandbox/amex/control/cards/amex-gold-2001/confirm", headers=KEY)
    assert confirmed.json()["confirmed"] == 3
    changes, cursor = await sync_all(client, linked, cursor)
    assert changes["added"] == [] and changes["removed"] == []
    assert {t["transaction_id"] for t in changes["modified"]} == pending_ids
    assert all(t["status"] == "confirmed" and t["posted_date"] for t in changes["modified"])

    grown = await client.post(
        "/sandbox/amex/control/cards/amex-gold-2001/statements",
        headers=KEY,
        json={"count": 42, "pending": 2},
    )
    assert grown.json() == {"card_id": "amex-gold-2001", "count": 42, "pending": 2}
    changes, cursor = await sync_all(client, linked, cursor)
    new_ids = [t["transaction_id"] for t in changes["added"]]
    assert len(new_ids) == 2 and all(t["status"] == "pending" for t in changes["added"])

    shrunk = await client.post(
        "/sandbox/amex/control/cards/amex-gold-2001/statements",
        headers=KEY,
        json={"count": 41, "pending": 1},
    )
    assert shrunk.status_code == 200
    changes, cursor = await sync_all(client, linked, cursor)
    assert changes["removed"] == [{"transaction_id": new_ids[-1]}]
    assert changes["added"] == [] and changes["modified"] == []

    refused = await client.post(
        "/sandbox/amex/control/cards/amex-gold-2001/statements",
        headers=KEY,
        json={"count": 10},
    )
    assert refused.status_code == 400


async def test_bad_cursor_and_count_are_refused(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "jcb")
    bad = await get_sync(client, linked, cursor="not-a-cursor")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cursor"
    for count in (0, 501, "x"):
        answer = await get_sync(client, linked, count=count)
        assert answer.status_code == 400
    _, cursor = await sync_all(client, linked)
    await client.post("/sandbox/jcb/control/reset", headers=KEY)
    relinked = await link_by_control(client, "jcb")
    stale = await get_sync(client, relinked, cursor=cursor)
    assert stale.json()["error"] == "invalid_cursor"


async def test_statements_are_deterministic_across_resets(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "jcb")
    before, _ = await sync_all(client, linked)
    await client.post("/sandbox/jcb/control/reset", headers=KEY)
    relinked = await link_by_control(client, "jcb")
    after, _ = await sync_all(client, relinked)
    assert before == after
    merchants = {t["merchant"] for t in after["added"]}
    assert len(merchants) > 10
    foreign = [t for t in after["added"] if t["foreign_currency"]]
    assert foreign and all(t["foreign_currency"] == "USD" for t in foreign)


async def test_r9_jcb_statements_arrive_after_the_confirmation_delay(
    client: httpx.AsyncClient,
) -> None:
    # Tokens outlive the clock jump below; expiry is tested elsewhere.
    await client.post("/sandbox/jcb/control/settings", headers=KEY, json={"access_token_ttl": 7200})
    linked = await link_by_control(client, "jcb")
    first, cursor = await sync_all(client, linked)
    # Pending JCB statements are not in the API; confirmed ones of both users are.
    assert len(first["added"]) == 74
    assert {t["status"] for t in first["added"]} == {"confirmed"}
    assert {t["holder_name"] for t in first["added"]} == {"山田 太郎", "山田 花子"}

    await client.post("/sandbox/jcb/control/cards/jcb-gold-4001/confirm", headers=KEY)
    session = (
        await client.post(
            "/sandbox/jcb/legacy/login", data={"user_id": "user_good", "password": "pass_good"}
        )
    ).json()["session"]
    website = await client.get(
        "/sandbox/jcb/legacy/statements", headers={"X-Legacy-Session": session}
    )
    on_website = [s for s in website.json()["statements"] if s["card_id"] == "jcb-gold-4001"]
    assert len(on_website) == 40  # MyJCB shows them at once
    early, cursor = await sync_all(client, linked, cursor)
    assert early["added"] == []  # ...the API does not yet
    await client.post("/sandbox/jcb/control/clock", headers=KEY, json={"advance_seconds": 3601})
    late, _ = await sync_all(client, linked, cursor)
    assert len(late["added"]) == 3
    assert {t["card_id"] for t in late["added"]} == {"jcb-gold-4001"}


async def test_r7_after_an_upgrade_only_the_new_card_is_synced(client: httpx.AsyncClient) -> None:
    linked = await link_by_control(client, "jcb", user_id="user_upgrade")
    me = (await client.get("/sandbox/jcb/api/v1/me", headers=linked.bearer)).json()
    cards = {card["card_id"]: card for card in me["cards"]}
    assert cards["jcb-general-5001"]["status"] == "replaced"
    assert cards["jcb-general-5001"]["replaced_by"] == "jcb-plat-5002"
    first, cursor = await sync_all(client, linked)
    assert {t["card_id"] for t in first["added"]} == {"jcb-plat-5002"}

    await client.post(
        "/sandbox/jcb/control/settings", headers=KEY, json={"jcb_confirmation_delay": 0}
    )
    upgraded = await client.post(
        "/sandbox/jcb/control/cards/jcb-plat-5002/upgrade",
        headers=KEY,
        json={"new_card_id": "jcb-corp-5003", "product": "jcb_corporate", "count": 4},
    )
    assert upgraded.json()["old"]["replaced_by"] == "jcb-corp-5003"
    await client.post("/sandbox/jcb/control/cards/jcb-plat-5002/confirm", headers=KEY)
    changes, _ = await sync_all(client, linked, cursor)
    assert {t["card_id"] for t in changes["added"]} == {"jcb-corp-5003"}
    assert len(changes["added"]) == 4
    assert changes["modified"] == []  # the old card's late confirmations are not synced


async def test_a_million_statements_are_served_from_any_cursor_quickly(
    client: httpx.AsyncClient,
) -> None:
    linked = await link_by_control(client, "amex", card_ids=["amex-biz-1001"])
    started = time.perf_counter()
    made = await client.post(
        "/sandbox/amex/control/cards/amex-biz-1001/statements",
        headers=KEY,
        json={"count": 1_000_000},
    )
    assert made.json()["count"] == 1_000_000
    first = (await get_sync(client, linked, count=500)).json()
    assert len(first["added"]) == 500 and first["has_more"]
    # Jump the cursor deep into the window: the cost does not grow with the position.
    raw = first["next_cursor"]
    body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    body["p"] = 999_900
    deep = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    last = (await get_sync(client, linked, cursor=deep, count=500)).json()
    assert len(last["added"]) == 100 and not last["has_more"]
    assert all(t["status"] == "confirmed" for t in last["added"])
    repeat = (await get_sync(client, linked, cursor=deep, count=500)).json()
    assert repeat["added"] == last["added"]
    assert time.perf_counter() - started < 3.0
