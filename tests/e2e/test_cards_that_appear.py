"""Cards that appear after the first link are noticed at the next sync or consent and
offered (``card.discovered``), never set up by themselves (R15, R9)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import BIZ, CONSULTING, GOLD, JCB_GOLD, PLATINUM, SHOP, switch

DISCOVERED = "card.discovered"


async def offers(renkei: Renkei, account_id: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in await renkei.events(account_id) if e["type"] == DISCOVERED]


async def office_accounts(renkei: Renkei, office: str) -> list[str]:
    office_id = (await renkei.office(office))["id"]
    return sorted(a["id"] for a in (await renkei.api.get(f"/offices/{office_id}/accounts")).json())


async def offered_in_office(
    renkei: Renkei, office_id: str, account_id: str | None = None
) -> list[dict[str, Any]]:
    """The office's card_discovered notices (of cards that appeared under ``account_id``)."""
    answer = await renkei.api.get(f"/offices/{office_id}/notices")
    assert answer.status_code == 200, answer.text
    return [
        n
        for n in answer.json()
        if n["kind"] == "card_discovered" and account_id in (None, *n["account_ids"])
    ]


async def sync(renkei: Renkei, account_id: str) -> None:
    answer = await renkei.sync_now(account_id)
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded", answer.text


async def test_a_supplementary_card_registered_later_is_offered_once_r15(renkei: Renkei) -> None:
    platinum = await renkei.account(SHOP, PLATINUM)
    biz = await renkei.account(SHOP, BIZ)
    elsewhere = await renkei.account(CONSULTING, GOLD)
    before = await office_accounts(renkei, SHOP)
    # The cards the online-service ID had at the first sync are not news.
    await sync(renkei, platinum["id"])
    assert await offers(renkei, platinum["id"]) == []

    # On the Amex side, the supplementary card is registered to the online-service ID.
    await renkei.control("amex", "/cards/amex-plat-3002/register")
    await sync(renkei, platinum["id"])
    [offer] = await offers(renkei, platinum["id"])
    assert offer["card_ref"] == "amex-plat-3002" and offer["role"] == "supplementary"
    assert offer["offer"] == "supplementary_card"  # R15: an account of its own
    assert offer["basic_card_id"] == platinum["card"]["id"]
    assert offer["office_id"] == platinum["office_id"] and offer["api_eligible"] is True

    # Offered once per office: another account of the same ID, or the same one again.
    await sync(renkei, biz["id"])
    await sync(renkei, platinum["id"])
    assert await offers(renkei, biz["id"]) == []
    assert len(await offers(renkei, platinum["id"])) == 1
    # Another office syncing a card of the same ID hears of it in its own office.
    await sync(renkei, elsewhere["id"])
    [other] = await offers(renkei, elsewhere["id"])
    assert other["office_id"] == elsewhere["office_id"] and other["card_ref"] == "amex-plat-3002"
    [listed] = await offered_in_office(renkei, elsewhere["office_id"])
    assert listed["card"]["card_id"] == other["card_id"] and listed["card"]["offer"] == (
        "supplementary_card"
    )
    assert listed["account_ids"] == [elsewhere["id"]]

    # Nothing is created without the person.
    assert await office_accounts(renkei, SHOP) == before
    rows = await renkei.statements(platinum["id"])
    assert {r["card_id"] for r in rows} == {platinum["card"]["id"]}  # R15


async def test_a_new_family_card_under_a_myjcb_id_is_offered_at_the_next_sync_r9(
    renkei: Renkei,
) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    await renkei.consent(await switch(renkei, account["id"]), user="user_good")
    await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    # The family card the MyJCB ID had when it was linked is no news.
    assert await offers(renkei, account["id"]) == []
    before = await office_accounts(renkei, SHOP)

    await renkei.control(
        "jcb",
        "/cards",
        {
            "user_id": "user_good",
            "card_id": "jcb-gold-4003",
            "product": "jcb_gold",
            "holder_name": "山田 次郎",
            "role": "supplementary",
            "basic_card_id": "jcb-gold-4001",
        },
    )
    await sync(renkei, account["id"])
    [offer] = await offers(renkei, account["id"])
    assert offer["card_ref"] == "jcb-gold-4003" and offer["holder_name"] == "山田 次郎"
    assert offer["offer"] == "register" and offer["issuer"] == "jcb"
    assert offer["statements_in_account"] is True  # R9: the link covers the whole ID
    # Nothing to do for it: the office's notices do not ask for an account.
    assert await offered_in_office(renkei, account["office_id"], account["id"]) == []
    await sync(renkei, account["id"])
    assert len(await offers(renkei, account["id"])) == 1
    assert await office_accounts(renkei, SHOP) == before


async def test_a_card_that_appeared_is_noticed_at_a_consent_too(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    await renkei.consent(await switch(renkei, account["id"]), user="user_good")
    linked = await renkei.wait_synced(account["id"], since=account["last_synced_at"])
    await renkei.control(
        "jcb",
        "/cards",
        {
            "user_id": "user_good",
            "card_id": "jcb-gold-4004",
            "product": "jcb_gold",
            "holder_name": "山田 三郎",
            "role": "supplementary",
            "basic_card_id": "jcb-gold-4001",
        },
    )
    renewed = await renkei.api.post(f"/accounts/{account['id']}/reauth")
    assert renewed.status_code == 200, renewed.text
    # The consent's own GET /api/v1/me goes through; the sync queued after it fails there,
    # before it could read the cards: whatever is offered, the consent offered it.
    await renkei.control(
        "jcb", "/faults", {"path": "/api/v1/me", "kind": "500", "times": 20, "after": 1}
    )
    await renkei.consent(renewed.json()["authorization_url"], user="user_good")
    synced = await renkei.wait_synced(account["id"], since=linked["last_synced_at"])
    assert synced["last_error"] == "issuer_unavailable"
    [offer] = await offers(renkei, account["id"])
    assert offer["card_ref"] == "jcb-gold-4004" and offer["holder_name"] == "山田 三郎"


async def test_a_fresh_demo_offers_the_supplementary_card_registered_since(
    renkei: Renkei,
) -> None:
    """The demo's second Amex ID got its supplementary card after renkei first saw it: the
    first sync of a fresh start offers it, with nothing done by hand."""
    family = await renkei.account(SHOP, "アメックス 次郎")
    for _ in range(100):
        offered = await offered_in_office(renkei, family["office_id"], family["id"])
        if offered:
            break
        await asyncio.sleep(0.2)
    [notice] = offered
    assert notice["card"]["masked_number"] == "XXXX-XXXXXX-71002"
    assert notice["card"]["offer"] == "supplementary_card"  # R15
    assert notice["card"]["basic_account_id"] == family["id"]
    assert len(await offers(renkei, family["id"])) == 1
