"""Members join by an invitation they accept, can be removed or leave, and an office
always keeps an admin."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import Harness

ANNA = "anna@example.com"  # the office's admin
BOB = "bob@example.com"  # invited
EVE = "eve@example.com"  # someone else


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "rule", "message", "details", "request_id"}
    error: dict[str, Any] = body["error"]
    return error


async def _anna_office(api: Harness, name: str = "Yamada") -> str:
    """An office Anna created herself (so she is its only admin)."""
    r = await api.client.post("/api/v1/offices", json={"name": name}, headers=api.auth(ANNA))
    assert r.status_code == 201, r.text
    office_id: str = r.json()["id"]
    return office_id


async def _invite(api: Harness, office_id: str, email: str, role: str = "member") -> str:
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/invitations",
        json={"email": email, "role": role},
        headers=api.auth(ANNA),
    )
    assert r.status_code == 201, r.text
    invitation_id: str = r.json()["id"]
    return invitation_id


async def _accept(api: Harness, invitation_id: str, who: str) -> httpx.Response:
    return await api.client.post(
        f"/api/v1/invitations/{invitation_id}/accept", headers=api.auth(who)
    )


async def _office_ids(api: Harness, who: str) -> list[str]:
    r = await api.client.get("/api/v1/offices", headers=api.auth(who))
    assert r.status_code == 200, r.text
    return [o["id"] for o in r.json()]


async def _member(api: Harness, office_id: str, email: str, role: str = "member") -> None:
    assert (
        await _accept(api, await _invite(api, office_id, email, role), email)
    ).status_code == 200


async def test_an_admin_cannot_make_someone_a_member_without_their_acceptance(
    api: Harness,
) -> None:
    office_id = await _anna_office(api)
    # Setting a role is for members only: it adds nobody.
    r = await api.client.put(
        f"/api/v1/offices/{office_id}/members/{BOB}",
        json={"role": "admin"},
        headers=api.auth(ANNA),
    )
    assert r.status_code == 404, r.text
    assert error_of(r)["code"] == "not_found"
    await _invite(api, office_id, BOB, "admin")
    # Invited, not yet accepted: the office is not in Bob's chooser and does not exist for him.
    assert await _office_ids(api, BOB) == []
    r = await api.client.get(f"/api/v1/offices/{office_id}", headers=api.auth(BOB))
    assert r.status_code == 404
    r = await api.client.get(f"/api/v1/offices/{office_id}/accounts", headers=api.auth(BOB))
    assert r.status_code == 404
    members = await api.client.get(f"/api/v1/offices/{office_id}/members", headers=api.auth(ANNA))
    assert [m["email"] for m in members.json()] == [ANNA]


async def test_the_invitee_sees_the_invitation_and_accepts_it(api: Harness) -> None:
    office_id = await _anna_office(api)
    invitation_id = await _invite(api, office_id, BOB, "read_only")
    mine = await api.client.get("/api/v1/invitations", headers=api.auth(BOB))
    assert mine.status_code == 200
    [seen] = mine.json()
    assert seen["id"] == invitation_id and seen["office_name"] == "Yamada"
    assert seen["invited_by"] == ANNA and seen["office_admins"] == [ANNA]
    assert seen["role"] == "read_only"
    # Nobody else sees it, accepts it or declines it.
    assert (await api.client.get("/api/v1/invitations", headers=api.auth(EVE))).json() == []
    refused = await _accept(api, invitation_id, EVE)
    assert refused.status_code == 404 and error_of(refused)["code"] == "not_found"
    declined = await api.client.post(
        f"/api/v1/invitations/{invitation_id}/decline", headers=api.auth(EVE)
    )
    assert declined.status_code == 404
    assert await _office_ids(api, EVE) == []
    accepted = await _accept(api, invitation_id, BOB)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"office_id": office_id, "email": BOB, "role": "read_only"}
    assert await _office_ids(api, BOB) == [office_id]
    assert (await api.client.get("/api/v1/invitations", headers=api.auth(BOB))).json() == []
    # Accepted once: the invitation is gone.
    assert (await _accept(api, invitation_id, BOB)).status_code == 404
    again = await api.client.post(
        f"/api/v1/offices/{office_id}/invitations",
        json={"email": BOB, "role": "admin"},
        headers=api.auth(ANNA),
    )
    assert again.status_code == 409 and error_of(again)["code"] == "already_member"


async def test_a_declined_or_cancelled_invitation_grants_nothing(api: Harness) -> None:
    office_id = await _anna_office(api)
    invitation_id = await _invite(api, office_id, BOB)
    r = await api.client.post(f"/api/v1/invitations/{invitation_id}/decline", headers=api.auth(BOB))
    assert r.status_code == 204
    assert (await _accept(api, invitation_id, BOB)).status_code == 404
    assert await _office_ids(api, BOB) == []
    invitation_id = await _invite(api, office_id, BOB)
    pending = await api.client.get(
        f"/api/v1/offices/{office_id}/invitations", headers=api.auth(ANNA)
    )
    assert [i["email"] for i in pending.json()] == [BOB]
    r = await api.client.delete(
        f"/api/v1/offices/{office_id}/invitations/{invitation_id}", headers=api.auth(ANNA)
    )
    assert r.status_code == 204
    assert (await _accept(api, invitation_id, BOB)).status_code == 404
    assert await _office_ids(api, BOB) == []


async def test_only_admins_invite(api: Harness) -> None:
    office_id = await _anna_office(api)
    await _member(api, office_id, BOB, "member")
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/invitations",
        json={"email": EVE, "role": "admin"},
        headers=api.auth(BOB),
    )
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden"
    r = await api.client.get(f"/api/v1/offices/{office_id}/invitations", headers=api.auth(BOB))
    assert r.status_code == 403
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/invitations",
        json={"email": EVE, "role": "admin"},
        headers=api.auth(EVE),
    )
    assert r.status_code == 404  # an office she is not in does not exist for her


async def test_removal_ends_access_at_once(api: Harness) -> None:
    office_id = await _anna_office(api)
    await _member(api, office_id, BOB, "member")
    await _member(api, office_id, EVE, "member")
    r = await api.client.get(f"/api/v1/offices/{office_id}/accounts", headers=api.auth(BOB))
    assert r.status_code == 200
    # A member removes nobody else.
    r = await api.client.delete(f"/api/v1/offices/{office_id}/members/{EVE}", headers=api.auth(BOB))
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden"
    r = await api.client.delete(
        f"/api/v1/offices/{office_id}/members/{BOB}", headers=api.auth(ANNA)
    )
    assert r.status_code == 204, r.text
    r = await api.client.get(f"/api/v1/offices/{office_id}/accounts", headers=api.auth(BOB))
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    assert await _office_ids(api, BOB) == []
    # A member may leave on their own.
    r = await api.client.delete(f"/api/v1/offices/{office_id}/members/{EVE}", headers=api.auth(EVE))
    assert r.status_code == 204
    assert await _office_ids(api, EVE) == []
    r = await api.client.delete(
        f"/api/v1/offices/{office_id}/members/{EVE}", headers=api.auth(ANNA)
    )
    assert r.status_code == 404


async def test_the_last_admin_cannot_leave_be_removed_or_be_demoted(api: Harness) -> None:
    office_id = await _anna_office(api)
    demote = await api.client.put(
        f"/api/v1/offices/{office_id}/members/{ANNA}",
        json={"role": "member"},
        headers=api.auth(ANNA),
    )
    assert demote.status_code == 409, demote.text
    error = error_of(demote)
    assert error["code"] == "last_admin" and error["details"]["action"] == "demote"
    leave = await api.client.delete(
        f"/api/v1/offices/{office_id}/members/{ANNA}", headers=api.auth(ANNA)
    )
    assert leave.status_code == 409 and error_of(leave)["code"] == "last_admin"
    # Not even the support administrator leaves an office without an admin.
    removed = await api.client.delete(
        f"/api/v1/offices/{office_id}/members/{ANNA}", headers=api.auth()
    )
    assert removed.status_code == 409 and error_of(removed)["code"] == "last_admin"
    members = await api.client.get(f"/api/v1/offices/{office_id}/members", headers=api.auth(ANNA))
    assert members.json() == [{"office_id": office_id, "email": ANNA, "role": "admin"}]
    # With a second admin, the first may step down.
    await _member(api, office_id, BOB, "admin")
    demote = await api.client.put(
        f"/api/v1/offices/{office_id}/members/{ANNA}",
        json={"role": "member"},
        headers=api.auth(ANNA),
    )
    assert demote.status_code == 200, demote.text
    # Now Bob is the last admin.
    leave = await api.client.delete(
        f"/api/v1/offices/{office_id}/members/{BOB}", headers=api.auth(BOB)
    )
    assert leave.status_code == 409 and error_of(leave)["code"] == "last_admin"


async def test_two_offices_of_one_name_come_with_their_admins(api: Harness) -> None:
    mine = await _anna_office(api, "山田商店")
    r = await api.client.post("/api/v1/offices", json={"name": "山田商店"}, headers=api.auth(EVE))
    look_alike = r.json()["id"]
    r = await api.client.post(
        f"/api/v1/offices/{look_alike}/invitations",
        json={"email": ANNA, "role": "admin"},
        headers=api.auth(EVE),
    )
    [seen] = (await api.client.get("/api/v1/invitations", headers=api.auth(ANNA))).json()
    assert seen["office_admins"] == [EVE] and seen["invited_by"] == EVE
    assert (await _accept(api, seen["id"], ANNA)).status_code == 200
    offices = (await api.client.get("/api/v1/offices", headers=api.auth(ANNA))).json()
    assert {o["id"]: o["admins"] for o in offices} == {mine: [ANNA], look_alike: [EVE, ANNA]}
