"""The conversation API's contract and its access checks."""

from __future__ import annotations

import httpx

from i18n import render
from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import BIZ, SHOP


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
        timeout=30,
        base_url=f"{renkei.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
    ) as stranger:
        assert (await stranger.get(f"/conversations/{chat.id}")).status_code == 404
        sent = await stranger.post(
            f"/conversations/{chat.id}/messages", json={"choice": "switch_to_api"}
        )
        assert sent.status_code == 404
        forged = await stranger.post("/conversations", json={"user": "owner@example.com"})
        assert forged.status_code == 403
        assert (await stranger.get("/analytics/flows")).status_code == 403
    async with httpx.AsyncClient(timeout=30, base_url=f"{renkei.base_url}/api/v1") as anonymous:
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


async def test_the_history_is_the_conversation_as_read_newest_last(renkei: Renkei) -> None:
    chat = Chat(renkei)
    await chat.start("ja")
    await chat.choose("switch_to_api")
    await chat.choose_label(SHOP)
    await chat.choose_label(BIZ)
    assert chat.link()
    consent = chat.where()
    drawn_at = chat.last["turn"]
    # "Back" from a step drawn earlier (another tab): said so, and nothing moves.
    await chat.refresh()
    stale = await chat._send({"choice": "back", "turn": drawn_at - 2})
    assert stale["replies"][0]["text"] == render("common.choice_stale", "ja")
    assert chat.where() == consent
    await chat._send({"choice": "lang:en", "turn": stale["turn"]})

    answer = await renkei.api.get(f"/conversations/{chat.id}/history", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    lines = answer.json()["lines"]
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(seqs) and seqs[-1] == chat.last["turn"]
    assert lines[0]["speaker"] == "assistant"
    assert lines[0]["replies"][0]["text"] == render("menu.greeting", "ja")
    said = [reply["text"] for line in lines for reply in line["replies"]]
    # In the language of the moment: Japanese before the switch, English after it.
    assert render("menu.choose_office", "ja") in said
    assert lines[-1]["replies"][0]["text"] == render("common.language_changed", "en")
    chosen = [line["text"] for line in lines if line["speaker"] == "person"]
    assert chosen[0] == render("menu.flow.switch_to_api", "ja")
    assert any(BIZ in (text or "") for text in chosen) and SHOP in chosen
    links = [reply["link"] for line in lines for reply in line["replies"] if reply["link"]]
    assert links and "oauth" not in str(lines)  # the link's words, never its address
    offered = [c["label"] for line in lines for r in line["replies"] for c in r["choices"]]
    assert SHOP in offered

    newest = (await renkei.api.get(f"/conversations/{chat.id}/history", params={"limit": 2})).json()
    assert [line["seq"] for line in newest["lines"]] == seqs[-2:] and newest["more"]
    older = await renkei.api.get(
        f"/conversations/{chat.id}/history", params={"limit": 2, "before": seqs[-2]}
    )
    assert [line["seq"] for line in older.json()["lines"]][-1] < seqs[-2]
