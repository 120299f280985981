"""The REST layer end to end over real storage: contracts, error envelope, rules."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import select

from backend.api.app import create_api_router, install_error_handlers
from backend.db import tables as t
from backend.secrets import FernetSecretBox
from backend.service.outbox import sign
from backend.service.ports import IssuerStatement

from .conftest import AMEX_CARD, ISSUER_ID, WEBHOOK_SECRET, Harness

SECRET_FIELDS = ("password", "legacy_password", "legacy_login_id", "tokens", "code_verifier")


def _no_secrets(body: Any) -> None:
    text = json.dumps(body)
    for name in SECRET_FIELDS:
        assert f'"{name}"' not in text


async def _office(api: Harness, member: str = "taro@example.com") -> str:
    r = await api.client.post("/api/v1/offices", json={"name": "Yamada"}, headers=api.auth())
    assert r.status_code == 201, r.text
    office_id: str = r.json()["id"]
    await join(api, office_id, member, "admin")
    return office_id


async def join(api: Harness, office_id: str, member: str, role: str) -> None:
    """The support administrator invites ``member``, who accepts with their own token."""
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/invitations",
        json={"email": member, "role": role},
        headers=api.auth(),
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"/api/v1/invitations/{r.json()['id']}/accept", headers=api.auth(member)
    )
    assert r.status_code == 200, r.text


async def _release(api: Harness, office_id: str) -> None:
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/rollouts", json={"issuer": "amex"}, headers=api.auth()
    )
    assert r.status_code == 201, r.text


async def _linked_account(api: Harness, office_id: str, who: dict[str, str]) -> str:
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/accounts",
        json={"sync_method": "api", "issuer": "amex", "name": "Biz"},
        headers=who,
    )
    assert r.status_code == 201, r.text
    start = r.json()
    assert set(start) == {
        "account_id",
        "authorization_url",
        "sign_in_code",
        "sign_in_code_expires_at",
    }
    r = await api.callback(start, who, code="c")
    assert r.status_code == 200
    assert "連携が完了しました" in r.text and "The card is linked" in r.text
    assert r.headers["referrer-policy"] == "no-referrer"
    account_id: str = start["account_id"]
    return account_id


def test_router_imports_and_openapi_generates() -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(create_api_router())
    schema = app.openapi()
    conflict = schema["paths"]["/api/v1/accounts/{account_id}"]["delete"]["responses"]["409"]
    assert "revoke_at_issuer_first" in conflict["description"]


async def test_bearer_required_with_envelope(api: Harness) -> None:
    r = await api.client.get("/api/v1/offices")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "unauthenticated"
    r = await api.client.get("/api/v1/offices", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


async def test_offices_members_and_roles(api: Harness) -> None:
    office_id = await _office(api)
    r = await api.client.get("/api/v1/offices", headers=api.auth("taro@example.com"))
    assert r.status_code == 200
    assert [(o["id"], o["role"]) for o in r.json()] == [(office_id, "admin")]
    r = await api.client.get(
        f"/api/v1/offices/{office_id}", headers=api.auth("stranger@example.com")
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/rollouts",
        json={"issuer": "amex"},
        headers=api.auth("taro@example.com"),
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"


async def test_api_account_needs_release_r3(api: Harness) -> None:
    office_id = await _office(api)
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/accounts",
        json={"sync_method": "api", "issuer": "amex", "name": "Biz"},
        headers=api.auth("taro@example.com"),
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "api_not_released"
    assert r.json()["error"]["rule"] == "R3"


async def test_legacy_account_then_notice_and_switch(api: Harness) -> None:
    office_id = await _office(api)
    who = api.auth("taro@example.com")
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/accounts",
        json={
            "sync_method": "legacy",
            "issuer": "amex",
            "name": "Biz",
            "login_id": "yamada",
            "password": "pw-secret",
        },
        headers=who,
    )
    assert r.status_code == 201, r.text
    account = r.json()
    assert account["sync_method"] == "legacy" and account["has_legacy_credentials"] is True
    assert account["card"]["masked_number"] == AMEX_CARD.masked_number
    assert "pw-secret" not in r.text
    _no_secrets(account)
    r = await api.client.get(f"/api/v1/offices/{office_id}/notices", headers=who)
    assert r.json() == []
    await _release(api, office_id)
    r = await api.client.get(f"/api/v1/offices/{office_id}/notices", headers=who)
    assert r.json() == [
        {
            "issuer": "amex",
            "account_ids": [account["id"]],
            "kind": "api_released",
            "expires_at": None,
            "card": None,
            "stop_at_member_site": False,
            "member_site_url": None,
        }
    ]
    r = await api.client.post(f"/api/v1/accounts/{account['id']}/switch-to-api", headers=who)
    assert r.status_code == 200, r.text
    state, cookie = await api.bind(r.json(), who)
    r = await api.client.get(
        "/api/v1/oauth/callback",
        params={"state": state, "code": "c", "iss": ISSUER_ID["amex"]},
        headers={"Accept": "application/json", **cookie},
    )
    assert r.status_code == 200
    assert r.json()["linked"] is True and r.json()["purpose"] == "switch"
    r = await api.client.get(f"/api/v1/accounts/{account['id']}", headers=who)
    switched = r.json()
    assert switched["sync_method"] == "api"
    assert switched["has_legacy_credentials"] is False  # R2
    assert switched["link"]["status"] == "active"
    _no_secrets(switched)
    # The state is single-use, even in the browser that started it.
    r = await api.client.get(
        "/api/v1/oauth/callback",
        params={"state": state, "code": "c", "iss": ISSUER_ID["amex"]},
        headers={"Accept": "application/json", **cookie},
    )
    assert r.status_code == 400
    assert r.json()["error"]["details"]["reason"] == "replayed"


async def test_second_link_of_a_card_refused_r5(api: Harness) -> None:
    office_id = await _office(api)
    await _release(api, office_id)
    who = api.auth("taro@example.com")
    await _linked_account(api, office_id, who)
    other_office = await _office(api)  # R14: the same card used in a second office
    await _release(api, other_office)
    r = await api.client.post(
        f"/api/v1/offices/{other_office}/accounts",
        json={"sync_method": "api", "issuer": "amex", "name": "Again"},
        headers=who,
    )
    r = await api.callback(r.json(), who, code="c")
    assert r.status_code == 200
    assert "連携できませんでした" in r.text and "API連携できる口座は1つだけ" in r.text
    assert "already API-linked to another account" in r.text


async def test_delete_amex_api_account_needs_revocation_r10(api: Harness) -> None:
    office_id = await _office(api)
    await _release(api, office_id)
    who = api.auth("taro@example.com")
    account_id = await _linked_account(api, office_id, who)
    r = await api.client.delete(f"/api/v1/accounts/{account_id}", headers=who)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "revoke_at_issuer_first"
    api.amex.link = "stopped"  # R16: stopped on the member site
    r = await api.client.delete(f"/api/v1/accounts/{account_id}", headers=who)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "deleted"


async def test_sync_now_and_rate_limit(api: Harness) -> None:
    office_id = await _office(api)
    await _release(api, office_id)
    who = api.auth("taro@example.com")
    account_id = await _linked_account(api, office_id, who)
    api.amex.statements = [
        IssuerStatement("t1", AMEX_CARD.card_ref, dt.date(2026, 1, 2), None, "SHOP", 1200)
    ]
    r = await api.client.post(f"/api/v1/accounts/{account_id}/sync", headers=who)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and r.json()["added"] == 1
    api.amex.rate_limited = True
    r = await api.client.post(f"/api/v1/accounts/{account_id}/sync", headers=who)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "7"
    assert r.json()["error"]["code"] == "rate_limited"
    reader = api.auth("reader@example.com")
    await join(api, office_id, "reader@example.com", "read_only")
    r = await api.client.post(f"/api/v1/accounts/{account_id}/sync", headers=reader)
    assert r.status_code == 403
    r = await api.client.get("/api/v1/events", params={"account_id": account_id}, headers=reader)
    assert r.status_code == 200
    assert "sync.completed" in [e["type"] for e in r.json()]


async def test_a_sync_failing_on_old_tokens_leaves_a_link_renewed_meanwhile(
    api: Harness,
) -> None:
    office_id = await _office(api)
    await _release(api, office_id)
    who = api.auth("taro@example.com")
    account_id = await _linked_account(api, office_id, who)

    async def renewed_meanwhile() -> None:
        api.amex.before_page = None
        r = await api.client.post(f"/api/v1/accounts/{account_id}/reauth", headers=who)
        assert r.status_code == 200, r.text
        r = await api.callback(r.json(), who, code="c")
        assert r.status_code == 200 and "連携が完了しました" in r.text

    # The page call of the running sync still carries the old grant's tokens.
    api.amex.before_page = renewed_meanwhile
    api.amex.consent_revoked = True
    r = await api.client.post(f"/api/v1/accounts/{account_id}/sync", headers=who)
    assert r.status_code == 200 and r.json()["status"] == "failed", r.text
    r = await api.client.get(f"/api/v1/accounts/{account_id}", headers=who)
    assert r.json()["status"] == "active"
    assert r.json()["link"]["status"] == "active"
    r = await api.client.get("/api/v1/events", params={"account_id": account_id}, headers=who)
    assert "link.revoked" not in [e["type"] for e in r.json()]


async def test_upload_and_paged_statements(api: Harness) -> None:
    office_id = await _office(api)
    who = api.auth("taro@example.com")
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/accounts",
        json={
            "sync_method": "upload",
            "issuer": "amex",
            "name": "Files",
            "card": {
                "card_ref": AMEX_CARD.card_ref,
                "product": AMEX_CARD.product,
                "masked_number": AMEX_CARD.masked_number,
                "holder_name": AMEX_CARD.holder_name,
            },
        },
        headers=who,
    )
    assert r.status_code == 201, r.text
    account_id = r.json()["id"]
    data = b"2026-01-01,A,100\n2026-01-02,B,200\n2026-01-03,C,300\n"
    r = await api.client.post(
        f"/api/v1/accounts/{account_id}/statements/upload",
        files={"file": ("s.csv", data, "text/csv")},
        headers=who,
    )
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 3
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await api.client.get(
            f"/api/v1/accounts/{account_id}/statements", params=params, headers=who
        )
        assert r.status_code == 200, r.text
        seen += [s["use_date"] for s in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["2026-01-03", "2026-01-02", "2026-01-01"]
    r = await api.client.get(
        f"/api/v1/accounts/{account_id}/statements", params={"cursor": "%%%"}, headers=who
    )
    assert r.status_code == 400


async def test_validation_error_envelope_hides_input(api: Harness) -> None:
    office_id = await _office(api)
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/accounts",
        json={"sync_method": "legacy", "issuer": "amex", "login_id": "x", "password": 12345},
        headers=api.auth("taro@example.com"),
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    assert "12345" not in r.text


async def test_issuer_webhook_signature_and_replay(api: Harness) -> None:
    body = json.dumps({"event_id": "ev1", "type": "statements.available", "data": {}}).encode()
    url = "/api/v1/issuer-webhooks/amex"
    r = await api.client.post(url, content=body, headers={"Issuer-Signature": "t=1,v1=00"})
    assert r.status_code == 401
    good = {"Issuer-Signature": sign(WEBHOOK_SECRET, int(time.time()), body)}
    r = await api.client.post(url, content=body, headers=good)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "processed"}
    r = await api.client.post(url, content=body, headers=good)
    assert r.json() == {"status": "duplicate"}
    stale = {"Issuer-Signature": sign(WEBHOOK_SECRET, int(time.time()) - 301, body)}
    r = await api.client.post(url, content=body, headers=stale)
    assert r.status_code == 401
    r = await api.client.post("/api/v1/issuer-webhooks/jcb", content=body, headers=good)
    assert r.status_code == 401  # no secret configured for this issuer


async def test_callback_page_for_refusals(api: Harness) -> None:
    r = await api.client.get("/api/v1/oauth/callback", params={"state": "unknown"})
    assert r.status_code == 400
    assert "最初から" in r.text and "start again" in r.text
    office_id = await _office(api)
    await _release(api, office_id)
    who = api.auth("taro@example.com")
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/accounts",
        json={"sync_method": "api", "issuer": "amex"},
        headers=who,
    )
    r = await api.callback(r.json(), who, error="access_denied")
    assert r.status_code == 200
    assert "許可する" in r.text


async def test_other_reads_and_r7_operations(api: Harness) -> None:
    office_id = await _office(api)
    await _release(api, office_id)
    who = api.auth("taro@example.com")
    account_id = await _linked_account(api, office_id, who)
    r = await api.client.get(f"/api/v1/offices/{office_id}", headers=who)
    assert r.json()["role"] == "admin" and r.json()["released_issuers"] == ["amex"]
    r = await api.client.get(f"/api/v1/offices/{office_id}/members", headers=who)
    assert "taro@example.com" in {m["email"] for m in r.json()}
    r = await api.client.get(f"/api/v1/offices/{office_id}/accounts", headers=who)
    (account,) = r.json()
    _no_secrets(account)
    r = await api.client.get(
        f"/api/v1/offices/{office_id}/cards/{account['card']['id']}/uses", headers=who
    )
    assert r.status_code == 200, r.text
    assert r.json()["uses"][0]["api_linked"] is True
    r = await api.client.post(f"/api/v1/accounts/{account_id}/reauth", headers=who)
    assert r.status_code == 200, r.text
    r = await api.client.get("/api/v1/events", params={"office_id": office_id}, headers=who)
    assert "link.created" in [e["type"] for e in r.json()]
    creds = {"login_id": "old", "password": "pw"}
    r = await api.client.post(
        f"/api/v1/accounts/{account_id}/card-change/new-account",
        json={**creds, "name": "Old"},
        headers=who,
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_state"
    r = await api.client.post(
        f"/api/v1/accounts/{account_id}/card-change/resync-old-card", json=creds, headers=who
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "card_mismatch"


async def test_sync_now_carries_out_a_queued_sync_instead_of_asking_twice(api: Harness) -> None:
    office_id = await _office(api)
    await _release(api, office_id)
    who = api.auth("taro@example.com")
    account_id = await _linked_account(api, office_id, who)

    async def sync_jobs() -> list[str]:
        async with api.app.state.services.uow() as uow:
            rows = await uow.repo.session.execute(
                select(t.jobs.c.status).where(t.jobs.c.lock_key == f"account:{account_id}")
            )
            return [row.status for row in rows]

    assert "queued" in await sync_jobs()  # the consent asked for a first sync
    r = await api.client.post(f"/api/v1/accounts/{account_id}/sync", headers=who)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and r.json()["job_id"] is not None
    assert "queued" not in await sync_jobs()  # done by this request, not run again
    again = await api.client.post(f"/api/v1/accounts/{account_id}/sync", headers=who)
    assert again.json()["status"] == "succeeded" and again.json()["job_id"] is None


async def test_a_secret_no_key_opens_is_a_clear_503_not_a_crash(api: Harness) -> None:
    office_id = await _office(api)
    who = api.auth("taro@example.com")
    created = await api.client.post(
        f"/api/v1/offices/{office_id}/accounts",
        json={
            "sync_method": "legacy",
            "issuer": "amex",
            "name": "Biz",
            "login_id": "yamada",
            "password": "pw-secret",
        },
        headers=who,
    )
    assert created.status_code == 201, created.text
    # The key the credentials were sealed with is gone (dropped before a rotation ended).
    api.app.state.services.secrets = FernetSecretBox([Fernet.generate_key().decode()])
    r = await api.client.post(f"/api/v1/accounts/{created.json()['id']}/sync", headers=who)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "secret_unreadable"
