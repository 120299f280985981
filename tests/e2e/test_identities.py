"""Identities real people have: internationalised emails end to end, names that hide nothing."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

import httpx

from tests.e2e.conftest import Renkei

SHOP = "山田商店"
MEMBER = "山田@例え.jp"


def _labels(conversation: dict[str, Any]) -> list[str]:
    return [c["label"] for r in conversation["replies"] for c in r["choices"]]


async def _press(api: httpx.AsyncClient, conversation: dict[str, Any], words: str) -> Any:
    for reply in conversation["replies"]:
        for button in reply["choices"]:
            if words in button["label"] or button["value"] == words:
                sent = await api.post(
                    f"/conversations/{conversation['id']}/messages",
                    json={"choice": button["value"]},
                )
                assert sent.status_code == 200, sent.text
                return {**sent.json(), "id": conversation["id"]}
    raise AssertionError(f"no button {words!r}: {_labels(conversation)}")


async def test_a_member_with_an_internationalised_email_talks_to_the_assistant(
    renkei: Renkei,
) -> None:
    office = await renkei.office(SHOP)
    # Written in NFD and upper case: the member is the same person in NFC and lower case.
    invited = await renkei.api.post(
        f"/offices/{office['id']}/invitations",
        json={"email": unicodedata.normalize("NFD", MEMBER).upper(), "role": "member"},
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["email"] == MEMBER
    token = renkei.cli("token", "create", MEMBER)
    accepted = await renkei.api.post(
        f"/invitations/{invited.json()['id']}/accept",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert accepted.status_code == 200, accepted.text
    async with httpx.AsyncClient(
        base_url=f"{renkei.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as member:
        started = await member.post("/conversations", json={"user": MEMBER, "locale": "en"})
        assert started.status_code == 201, started.text
        conversation = started.json()
        # Each step below is a back-end call made as the member (X-Renkei-Act-As).
        conversation = await _press(member, conversation, "status")
        if any(SHOP in label for label in _labels(conversation)):
            conversation = await _press(member, conversation, SHOP)
        accounts = (await renkei.api.get(f"/offices/{office['id']}/accounts")).json()
        shown = " ".join(_labels(conversation))
        assert any(a["name"] in shown for a in accounts), conversation
    # A support administrator opens one for the member too, as the same person.
    opened = await renkei.admin.post("/conversations", json={"user": MEMBER.upper()})
    assert opened.status_code == 201, opened.text
    assert (await _press(renkei.admin, opened.json(), "status"))["replies"]


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(field in p["loc"] for p in error["details"]["errors"]), error


async def test_addresses_and_names_that_are_no_identity_are_refused_clearly(
    renkei: Renkei,
) -> None:
    no_at = await renkei.admin.post("/conversations", json={"user": "owner-example.com"})
    _refused(no_at, "user")
    office = await renkei.office(SHOP)
    for bad in (
        "a\x00b@example.com",
        "a" * 10_000 + "@example.com",
        "nobody",
        "a b@x.jp",
        "a@-bad-.jp",
        "a@x..jp",
        "\u202eowner@example.com",
    ):
        answer = await renkei.api.put(
            f"/offices/{office['id']}/members/{quote(bad, safe='@')}", json={"role": "member"}
        )
        _refused(answer, "email")
    for bad in ("A\x00B", "bell\x07", "evil\u202etxt.exe", "zero\u200bwidth", "line\u2028two"):
        _refused(await renkei.api.post("/offices", json={"name": bad}), "name")
        _refused(
            await renkei.api.post(
                f"/offices/{office['id']}/accounts",
                json={"sync_method": "api", "issuer": "amex", "name": bad},
            ),
            "name",
        )
    decomposed = unicodedata.normalize("NFD", "ガス代の事務所")
    created = await renkei.api.post("/offices", json={"name": decomposed})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "ガス代の事務所"


async def test_a_conversation_for_an_office_id_of_any_text_is_refused_not_crashed(
    renkei: Renkei,
) -> None:
    # Found by the schema fuzzer: the id went into the assistant's back-end URL raw.
    for office_id in ("a\nb", "../offices", "x?y#z", "%2F"):
        answer = await renkei.admin.post(
            "/conversations", json={"user": "owner@example.com", "office_id": office_id}
        )
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "not_found"
