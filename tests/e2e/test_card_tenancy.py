"""Card tenancy: nothing a member of one office sends about a card changes another office.

A member of a fresh office of her own knows another office's `card_ref` (every account
answer carries it). She declares that card for an upload account with her own values,
as a business card; the other office's account and its refusal to switch (R1) stay as
the issuer reported the card. Real server, real sandbox issuers, SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import GREEN, PLATINUM, SHOP, error_of

FIXTURE = Path(__file__).parents[1] / "fixtures/statements/amex_basic_and_supplementary.csv"


async def _outsider(renkei: Renkei, email: str = "mallory@example.com") -> httpx.AsyncClient:
    token = renkei.cli("token", "create", email)
    return httpx.AsyncClient(
        base_url=f"{renkei.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


async def _own_office(client: httpx.AsyncClient) -> str:
    created = await client.post("/offices", json={"name": "Mallory Trading"})
    assert created.status_code == 201, created.text
    office_id: str = created.json()["id"]
    return office_id


def _declared(card_ref: str, **values: str) -> dict[str, Any]:
    return {
        "sync_method": "upload",
        "issuer": "amex",
        "name": "declared",
        "card": {
            "card_ref": card_ref,
            "product": values.get("product", "amex_business"),
            "masked_number": values.get("masked_number", "XXXX-XXXXXX-66666"),
            "holder_name": values.get("holder_name", "MALLORY"),
            "role": values.get("role", "supplementary"),
        },
    }


async def test_redeclaring_another_offices_card_changes_nothing_there(renkei: Renkei) -> None:
    victim = await renkei.account(SHOP, GREEN)
    card_before = victim["card"]
    assert card_before["product"] == "amex_personal_green"
    shop = await renkei.office(SHOP)
    cards_before = (await renkei.api.get(f"/offices/{shop['id']}/cards")).json()
    async with await _outsider(renkei) as mallory:
        office_id = await _own_office(mallory)
        released = await renkei.admin.post(
            f"/offices/{office_id}/rollouts", json={"issuer": "amex"}
        )
        assert released.status_code == 201, released.text
        created = await mallory.post(
            f"/offices/{office_id}/accounts", json=_declared(card_before["card_ref"])
        )
        assert created.status_code == 201, created.text
        hers = created.json()["card"]
        after = await renkei.get_account(victim["id"])
        assert after["card"] == card_before  # product, number, holder, role as the issuer said
        refused = await renkei.api.post(f"/accounts/{victim['id']}/switch-to-api")
        assert refused.status_code == 409, refused.text
        assert error_of(refused)["code"] == "card_not_eligible"  # R1, as before
        # Her account shows what she declared: her own record, apart from the issuer's card.
        assert hers["declared"] is True and hers["holder_name"] == "MALLORY"
        assert hers["id"] != card_before["id"]
        # The card id of another office names nothing in hers.
        named = await mallory.post(
            f"/offices/{office_id}/accounts",
            json={"sync_method": "api", "issuer": "amex", "card_id": card_before["id"]},
        )
        assert named.status_code == 404, named.text
        uses = await mallory.get(f"/offices/{office_id}/cards/{card_before['id']}/uses")
        assert uses.status_code == 404
    assert (await renkei.api.get(f"/offices/{shop['id']}/cards")).json() == cards_before
    uses = await renkei.api.get(f"/offices/{shop['id']}/cards/{card_before['id']}/uses")
    assert [u["office_id"] for u in uses.json()["uses"]] == [shop["id"]]


async def test_a_declared_card_becomes_the_issuers_card_when_the_issuer_reports_it(
    renkei: Renkei,
) -> None:
    """The other way round: the upload account of a declared card, switched to API, takes
    the issuer's card as the consent reports it, with its uploaded statements."""
    shop_platinum = await renkei.account(SHOP, PLATINUM)
    issuer_card = shop_platinum["card"]
    async with await _outsider(renkei, "hanako@example.com") as hanako:
        office_id = await _own_office(hanako)
        released = await renkei.admin.post(
            f"/offices/{office_id}/rollouts", json={"issuer": "amex"}
        )
        assert released.status_code == 201, released.text
        created = await hanako.post(
            f"/offices/{office_id}/accounts",
            json=_declared(
                issuer_card["card_ref"],
                product="amex_business_platinum",
                masked_number=issuer_card["masked_number"],
                holder_name="YAMADA T",
                role="basic",
            ),
        )
        assert created.status_code == 201, created.text
        account = created.json()
        upload = await hanako.post(
            f"/accounts/{account['id']}/statements/upload",
            files={"file": ("amex.csv", FIXTURE.read_bytes(), "text/csv")},
        )
        assert upload.status_code == 200, upload.text
        assert upload.json()["added"] > 0
        switched = await hanako.post(f"/accounts/{account['id']}/switch-to-api")
        assert switched.status_code == 200, switched.text
        callback = await renkei.consent(
            switched.json()["authorization_url"],
            cards=[issuer_card["card_ref"]],
            token=hanako.headers["Authorization"].removeprefix("Bearer "),  # her own browser
        )
        assert callback.status_code == 200, callback.text
        linked = (await hanako.get(f"/accounts/{account['id']}")).json()
        assert linked["sync_method"] == "api" and linked["link"]["status"] == "active"
        assert linked["card"]["id"] == issuer_card["id"] and linked["card"]["declared"] is False
        assert linked["card"]["holder_name"] == issuer_card["holder_name"]
        rows = (await hanako.get(f"/accounts/{account['id']}/statements")).json()["items"]
        assert rows and {r["card_id"] for r in rows} == {issuer_card["id"]}
    # The shop's account of the card never changed, and R5 now holds across both offices.
    assert (await renkei.get_account(shop_platinum["id"]))["card"] == issuer_card
    refused = await renkei.api.post(f"/accounts/{shop_platinum['id']}/switch-to-api")
    assert refused.status_code == 409, refused.text
    assert error_of(refused)["code"] == "card_already_linked"
    assert "office_id" not in error_of(refused)["details"]  # the owner is not in her office
