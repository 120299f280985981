"""What a browser gets: exports that spreadsheet software cannot run, uploads checked
before they are read, and no answer that can be sniffed as something else."""

from __future__ import annotations

import csv
import io

from backend.service.ports import ParsedStatementGroup
from tests.integration.api.conftest import AMEX_CARD, Harness, parse_statement_file
from tests.integration.api.test_rest_api import _office, join


async def _upload_account(api: Harness, office_id: str, who: dict[str, str]) -> str:
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
    account_id: str = r.json()["id"]
    return account_id


async def test_a_csv_export_neutralises_cells_that_start_a_formula(api: Harness) -> None:
    office_id = await _office(api)
    who = api.auth("taro@example.com")
    account_id = await _upload_account(api, office_id, who)
    merchants = ['=HYPERLINK("http://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB"]
    data = "".join(f"2026-01-0{n + 1},{m},-{100 + n}\n" for n, m in enumerate(merchants))
    data += "2026-01-09,PLAIN SHOP,500\n"
    r = await api.client.post(
        f"/api/v1/accounts/{account_id}/statements/upload",
        files={"file": ("s.csv", data.encode(), "text/csv")},
        headers=who,
    )
    assert r.status_code == 200, r.text
    r = await api.client.get(f"/api/v1/accounts/{account_id}/statements.csv", headers=who)
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    by_merchant = {row["merchant"]: row for row in rows}
    for number, merchant in enumerate(merchants):
        # The test parser numbers each line's merchant; the cell starts with a quote.
        row = by_merchant["'" + f"{merchant}-{number}"]
        assert row["amount_jpy"] == f"-{100 + number}"  # numbers stay numbers
    assert "PLAIN SHOP-5" in by_merchant
    for row in rows:
        assert not row["merchant"].startswith(("=", "+", "-", "@", "\t", "\r"))


async def test_an_upload_is_refused_by_role_before_the_file_is_read(api: Harness) -> None:
    office_id = await _office(api)
    account_id = await _upload_account(api, office_id, api.auth("taro@example.com"))
    await join(api, office_id, "reader@example.com", "read_only")
    parsed: list[str] = []

    def counting_parser(data: bytes, issuer: str) -> list[ParsedStatementGroup]:
        parsed.append(issuer)
        return parse_statement_file(data, issuer)

    api.app.state.parse_statement_file = counting_parser
    r = await api.client.post(
        f"/api/v1/accounts/{account_id}/statements/upload",
        files={"file": ("s.csv", b"2026-01-01,A,100\n", "text/csv")},
        headers=api.auth("reader@example.com"),
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    assert parsed == []
