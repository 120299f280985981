"""Two offices of one name are told apart wherever the assistant asks to pick one."""

from __future__ import annotations

import httpx

from tests.e2e.chat import Chat
from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import CONSULTING, SHOP

EVE = "eve@example.com"


async def test_the_office_chooser_tells_apart_two_offices_of_one_name(renkei: Renkei) -> None:
    token = renkei.cli("token", "create", EVE)
    async with httpx.AsyncClient(
        timeout=30,
        base_url=f"{renkei.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
    ) as eve:
        # Someone else names her office exactly like the owner's, and invites him.
        created = await eve.post("/offices", json={"name": SHOP})
        look_alike = created.json()["id"]
        invited = await eve.post(
            f"/offices/{look_alike}/invitations",
            json={"email": "owner@example.com", "role": "member"},
        )
        assert invited.status_code == 201, invited.text
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("register")
    # Not accepted yet: her office is not among his.
    offices = [c for c in chat.choices() if c.startswith("office:")]
    assert len(offices) == 2 and f"office:{look_alike}" not in offices
    assert SHOP in chat.labels() and CONSULTING in chat.labels()
    accepted = await renkei.api.post(f"/invitations/{invited.json()['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    chat = Chat(renkei)
    await chat.start()
    await chat.choose("register")
    mine = await renkei.office(SHOP)
    labels = dict(zip(chat.choices(), chat.labels(), strict=True))
    own, theirs = labels[f"office:{mine['id']}"], labels[f"office:{look_alike}"]
    assert own != theirs and SHOP in own and SHOP in theirs
    assert EVE in theirs and look_alike[:6] in theirs and mine["id"][:6] in own
    assert labels[chat.choice_for(CONSULTING)] == CONSULTING  # a unique name stays as it is
    await chat.choose(f"office:{look_alike}")
    assert chat.where()[0] == "register"


async def test_the_assistant_shows_an_invitation_and_the_invitee_joins(renkei: Renkei) -> None:
    """Acting as the invitee, the assistant offers the invitation; joining is their choice."""
    newcomer = "newcomer@example.com"
    shop = await renkei.office(SHOP)
    consulting = await renkei.office(CONSULTING)
    joins = await renkei.api.post(
        f"/offices/{shop['id']}/invitations", json={"email": newcomer, "role": "member"}
    )
    declines = await renkei.api.post(
        f"/offices/{consulting['id']}/invitations", json={"email": newcomer, "role": "admin"}
    )
    assert joins.status_code == 201 and declines.status_code == 201
    token = renkei.cli("token", "create", newcomer)
    async with httpx.AsyncClient(
        timeout=30,
        base_url=f"{renkei.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
    ) as own:
        chat = Chat(renkei, own)
        started = await own.post("/conversations", json={"user": newcomer, "locale": "en"})
        assert started.status_code == 201, started.text
        chat.id, chat.last = started.json()["id"], started.json()
        await chat.choose("register")
        assert chat.where() == (None, "menu")
        assert "owner@example.com" in chat.text() and SHOP in chat.text()
        assert shop["id"][:6] in chat.text() and "as an admin" in chat.text()
        assert (await own.get("/offices")).json() == []  # nothing granted by being invited
        await chat.choose(f"invitation:decline:{declines.json()['id']}")
        assert "declined" in chat.text()
        await chat.choose("register")
        await chat.choose(f"invitation:accept:{joins.json()['id']}")
        assert "joined" in chat.text()
        offices = (await own.get("/offices")).json()
        assert [(o["id"], o["role"]) for o in offices] == [(shop["id"], "member")]
        # An answered invitation cannot be used again.
        await chat._send({"choice": f"invitation:accept:{declines.json()['id']}"})
        assert "can no longer be used" in chat.text()
        await chat.choose("register")
        assert chat.where()[0] == "register"  # one office now: the flow starts in it
