"""Two inputs at once, and a registration begun twice: the back end acts once."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import SHOP
from tests.e2e.test_flow_register import open_flow


async def api_drafts(renkei: Renkei) -> list[dict[str, object]]:
    shop = await renkei.office(SHOP)
    accounts = (await renkei.api.get(f"/offices/{shop['id']}/accounts")).json()
    return [a for a in accounts if a["sync_method"] == "api" and a["link"] is None]


async def test_two_simultaneous_inputs_create_one_account(renkei: Renkei) -> None:
    chat = await open_flow(renkei, SHOP)
    await chat.choose("issuer:jcb")
    assert chat.where() == ("register", "name")
    path = f"/conversations/{chat.id}/messages"
    first, second = await asyncio.gather(
        renkei.api.post(path, json={"text": "JCB 経費用"}),
        renkei.api.post(path, json={"text": "JCB 経費用"}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["error"]["code"] == "conflict"
    assert len(await api_drafts(renkei)) == 1  # the refused input did nothing
    current = await chat.refresh()
    assert current["state"] == "consent"


async def test_going_back_and_naming_again_reuses_the_account(renkei: Renkei) -> None:
    chat = await open_flow(renkei, SHOP)
    await chat.choose("issuer:jcb")
    await chat.say("JCB 一回目")
    first_link = chat.link()
    await chat.choose("back")
    assert chat.where() == ("register", "name")
    await chat.say("JCB 二回目")
    assert chat.where() == ("register", "consent")
    drafts = await api_drafts(renkei)
    assert len(drafts) == 1  # authorized again, not created twice
    assert chat.link() != first_link  # a fresh state and PKCE verifier
