"""R5/R14 on the issuer's card identity, whatever an office declared for an upload account."""

from __future__ import annotations

from typing import Any

from .conftest import AMEX_CARD, Harness
from .test_rest_api import _linked_account, _office, _release


async def _declared_upload(api: Harness, office_id: str, who: dict[str, str]) -> dict[str, Any]:
    r = await api.client.post(
        f"/api/v1/offices/{office_id}/accounts",
        json={
            "sync_method": "upload",
            "issuer": "amex",
            "name": "Files",
            "card": {
                "card_ref": AMEX_CARD.card_ref,
                "product": "amex_business",
                "masked_number": "XXXX-XXXXXX-99999",
                "holder_name": "SOMEONE ELSE",
            },
        },
        headers=who,
    )
    assert r.status_code == 201, r.text
    account: dict[str, Any] = r.json()
    assert account["card"]["declared"] is True
    return account


async def _consent(api: Harness, account_id: str, who: dict[str, str]) -> str:
    r = await api.client.post(f"/api/v1/accounts/{account_id}/switch-to-api", headers=who)
    assert r.status_code == 200, r.text
    r = await api.callback(r.json(), who, code="c")
    return r.text


async def test_r5_a_declared_card_cannot_take_a_card_linked_in_another_office(
    api: Harness,
) -> None:
    first = await _office(api, "taro@example.com")
    await _release(api, first)
    taro = api.auth("taro@example.com")
    linked_id = await _linked_account(api, first, taro)
    second = await _office(api, "jiro@example.com")
    await _release(api, second)
    jiro = api.auth("jiro@example.com")
    declared = await _declared_upload(api, second, jiro)
    page = await _consent(api, declared["id"], jiro)
    assert "already API-linked to another account" in page, page  # R5, across offices
    r = await api.client.get(f"/api/v1/accounts/{declared['id']}", headers=jiro)
    assert r.json()["sync_method"] == "upload" and r.json()["card"]["declared"] is True
    r = await api.client.get(f"/api/v1/accounts/{linked_id}", headers=taro)
    assert r.json()["link"]["status"] == "active"
    assert r.json()["card"]["holder_name"] == AMEX_CARD.holder_name  # as the issuer said


async def test_a_declared_card_is_linked_as_the_issuer_reports_it(api: Harness) -> None:
    office_id = await _office(api, "jiro@example.com")
    await _release(api, office_id)
    jiro = api.auth("jiro@example.com")
    declared = await _declared_upload(api, office_id, jiro)
    r = await api.client.post(
        f"/api/v1/accounts/{declared['id']}/statements/upload",
        files={"file": ("s.csv", b"2026-01-01,A,100\n", "text/csv")},
        headers=jiro,
    )
    # The test file names the issuer's card number; the declaration said another one.
    assert r.status_code == 409, r.text
    await _consent(api, declared["id"], jiro)
    r = await api.client.get(f"/api/v1/accounts/{declared['id']}", headers=jiro)
    card = r.json()["card"]
    assert r.json()["link"]["status"] == "active"
    assert card["declared"] is False and card["id"] != declared["card"]["id"]
    assert (card["holder_name"], card["masked_number"]) == (
        AMEX_CARD.holder_name,
        AMEX_CARD.masked_number,
    )
