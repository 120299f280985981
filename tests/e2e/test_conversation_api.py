"""The conversation API's contract and its access checks."""

from __future__ import annotations

import httpx

from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei


async def test_contract_shape(renkei: Renkei) -> None:
    chat = Chat(renkei)
    created = await chat.start("en")
    assert {"id", "flow", "state", "replies"} <= created.keys()
    assert created["flow"] is None
    reply = created["replies"][0]
    assert {"text", "choices", "link"} <= reply.keys()
    assert all({"value", "label"} <= c.keys() for c in reply["choices"])
    fetched = await chat.refresh()
    assert fetched["id"] == created["id"] and fetched["replies"] == created["replies"]


async def test_a_member_talks_for_themselves_only(renkei: Renkei) -> None:
    chat = Chat(renkei)
    await chat.start()
    token = renkei.cli("token", "create", "stranger@example.com")
    async with httpx.AsyncClient(
        base_url=f"{renkei.base_url}/api/v1", headers={"Authorization": f"Bearer {token}"}
    ) as stranger:
        assert (await stranger.get(f"/conversations/{chat.id}")).status_code == 404
        sent = await stranger.post(
            f"/conversations/{chat.id}/messages", json={"choice": "switch_to_api"}
        )
        assert sent.status_code == 404
        forged = await stranger.post("/conversations", json={"user": "owner@example.com"})
        assert forged.status_code == 403
        assert (await stranger.get("/analytics/flows")).status_code == 403
    async with httpx.AsyncClient(base_url=f"{renkei.base_url}/api/v1") as anonymous:
        assert (await anonymous.post("/conversations", json={"user": "x@y.z"})).status_code == 401


async def test_bad_messages_are_refused_clearly(renkei: Renkei) -> None:
    chat = Chat(renkei)
    await chat.start()
    both = await renkei.api.post(
        f"/conversations/{chat.id}/messages", json={"text": "a", "choice": "b"}
    )
    assert both.status_code == 422
    assert both.json()["error"]["code"] == "validation_error"
    unknown = await renkei.api.post("/conversations/nope/messages", json={"text": "hi"})
    assert unknown.status_code == 404


async def test_analytics_count_steps_for_the_operator(renkei: Renkei) -> None:
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("status")
    await chat.choose_label("山田商店")
    await chat.choose("cancel")
    counts = (await renkei.admin.get("/analytics/flows")).json()
    step = next(c for c in counts if c["flow"] == "status" and c["step"] == "choose_account")
    assert step["entered"] == 1 and step["abandoned"] == 1
