"""Statement files as people download them, uploaded to a running renkei over HTTP.

The files are the simulated issuers' own downloads (their real shape: the previous
bill's payment, 本人 and 家族N, notes after the table) or are written from the
issuers' formats by tests/support/statement_files.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from tests.e2e.conftest import Renkei
from tests.e2e.test_backend_rules import (
    CONSULTING,
    JCB_GOLD,
    JCB_UPGRADED,
    PLATINUM,
    SHOP,
    error_of,
    natural_keys,
)
from tests.support.statement_files import AMEX, JCB, Resave, Row, write, write_with_lines

BASIC = "XXXX-XXXXXX-31001"
SUPPLEMENTARY = "XXXX-XXXXXX-31002"
# Long before the demo's statements: every row of these files is new to the account.
DAY = dt.date(2024, 3, 1)


async def upload(
    renkei: Renkei, account_id: str, data: bytes, *, card_id: str | None = None
) -> httpx.Response:
    return await renkei.api.post(
        f"/accounts/{account_id}/statements/upload",
        files={"file": ("statements.csv", data, "text/csv")},
        data={"card_id": card_id} if card_id else {},
    )


async def download(renkei: Renkei, issuer: str, login: str, card_id: str) -> bytes:
    """The issuer's CSV download for one card, as a person gets it from the member site."""
    async with httpx.AsyncClient(timeout=30, base_url=renkei.base_url) as site:
        session = await site.post(
            f"/sandbox/{issuer}/legacy/login", data={"user_id": login, "password": "pass_good"}
        )
        assert session.status_code == 200, session.text
        csv = await site.get(
            f"/sandbox/{issuer}/legacy/statements.csv",
            params={"card_id": card_id},
            headers={"X-Legacy-Session": session.json()["session"]},
        )
    assert csv.status_code == 200, csv.text
    return csv.content


def resaved(data: bytes) -> bytes:
    """A download opened in a spreadsheet and saved again: UTF-8 with BOM, LF, bare numbers."""
    text = data.decode("cp932").replace("\r\n", "\n")
    lines = []
    for line in text.split("\n"):
        # "12,345" → 12345, as a spreadsheet writes a number back
        parts = line.split('"')
        for i in range(1, len(parts), 2):
            if parts[i].replace(",", "").lstrip("-").isdigit():
                parts[i] = parts[i].replace(",", "")
            else:
                parts[i] = f'"{parts[i]}"'
        lines.append("".join(parts) + (",," if line else ""))
    return "\ufeff".encode() + "\n".join(lines).encode("utf-8")


def by_card(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["card_id"], []).append(row)
    return grouped


async def test_amex_payment_refund_foreign_and_supplementary_rows(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, PLATINUM)
    before = await renkei.statements(account["id"])
    rows = [
        Row("purchase", DAY, "アスクル", 12_345, BASIC, "YAMADA TARO"),
        Row("payment", DAY + dt.timedelta(days=9), "口座振替によるお支払い", -98_000),
        Row("foreign", DAY + dt.timedelta(days=2), "AWS", 1_866, BASIC, "YAMADA TARO",
            ("12.34", "USD", "151.23")),
        Row("purchase", DAY + dt.timedelta(days=3), "スターバックス", 550, SUPPLEMENTARY,
            "YAMADA HANAKO"),
        Row("adjustment", DAY + dt.timedelta(days=4), "アスクル 返品", -1_200, BASIC,
            "YAMADA TARO"),
    ]  # fmt: skip
    written = write_with_lines(AMEX, rows)

    answer = await upload(renkei, account["id"], written.data)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["added"], body["duplicates"]) == (3, 0)
    assert (body["payments"], body["adjustments"]) == (1, 1)
    assert body["skipped_groups"] == [{"card": SUPPLEMENTARY, "rows": 1, "line": written.lines[3]}]
    assert (body["first_use_date"], body["last_use_date"]) == ("2024-03-01", "2024-03-05")
    new = [r for r in await renkei.statements(account["id"]) if r["id"] not in {
        b["id"] for b in before}]  # fmt: skip
    assert sorted((r["merchant"], r["amount_jpy"]) for r in new) == [
        ("AWS", 1_866),
        ("アスクル", 12_345),
        ("アスクル 返品", -1_200),
    ]
    assert {r["card_id"] for r in new} == {account["card"]["id"]}  # R15
    assert {r["merchant"]: r["kind"] for r in new}["アスクル 返品"] == "adjustment"
    assert {r["merchant"]: r["kind"] for r in new}["アスクル"] == "purchase"
    aws = next(r for r in new if r["merchant"] == "AWS")
    assert (aws["foreign_amount"], aws["foreign_currency"]) == ("12.34", "USD")


async def test_myjcb_download_of_the_basic_card_matches_what_legacy_sync_holds(
    renkei: Renkei,
) -> None:
    # 本人 and 家族1 in one download, with notes at the end: the family card's rows are
    # the ones legacy sync stored on the family card, so nothing is new.
    account = await renkei.account(SHOP, JCB_GOLD)
    held = await renkei.statements(account["id"])
    cards = by_card(held)
    assert len(cards) == 2  # the basic card and the family card (R9)
    data = await download(renkei, "jcb", "user_good", "jcb-gold-4001")
    assert "家族1".encode("cp932") in data and "【".encode("cp932") in data

    for variant in (data, resaved(data)):
        answer = await upload(renkei, account["id"], variant)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        confirmed = [r for r in held if r["status"] == "confirmed"]
        assert (body["added"], body["duplicates"]) == (0, len(confirmed))

    after = await renkei.statements(account["id"])
    assert len(after) == len(held)
    assert max(natural_keys(after).values()) == 1


async def test_myjcb_family_member_rows_go_to_the_family_card_with_its_name(
    renkei: Renkei,
) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    family_card = next(
        r["card_id"]
        for r in await renkei.statements(account["id"])
        if r["holder_name"] == "山田 花子"
    )
    rows = [
        Row("purchase", DAY, "ヨドバシカメラ", 54_800, "本人"),
        Row("purchase", DAY + dt.timedelta(days=1), "セブン-イレブン", 648, "家族1"),
        Row("adjustment", DAY + dt.timedelta(days=2), "ユニクロ", -2_990, "家族1"),
    ]

    answer = await upload(renkei, account["id"], write(JCB, rows, Resave(encoding="utf-8")))

    assert answer.status_code == 200, answer.text
    assert (answer.json()["added"], answer.json()["adjustments"]) == (3, 1)
    new = [r for r in await renkei.statements(account["id"]) if r["use_date"].startswith("2024")]
    placed = {(r["merchant"], r["card_id"], r["holder_name"]) for r in new}
    assert placed == {
        ("ヨドバシカメラ", account["card"]["id"], "山田 太郎"),
        ("セブン-イレブン", family_card, "山田 花子"),
        ("ユニクロ", family_card, "山田 花子"),
    }


async def test_a_file_overlapping_an_earlier_one_adds_only_the_new_days(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    days = [
        Row("purchase", DAY + dt.timedelta(days=n), f"お店{n}", 1_000 + n, "本人") for n in range(6)
    ]
    first = await upload(renkei, account["id"], write(JCB, days[:4]))
    assert first.json()["added"] == 4, first.text

    second = await upload(renkei, account["id"], write(JCB, days[2:], Resave(bom=True,
        encoding="utf-8", newline="\n", quote_amounts=True)))  # fmt: skip

    assert second.status_code == 200, second.text
    assert (second.json()["added"], second.json()["duplicates"]) == (2, 2)
    new = [r for r in await renkei.statements(account["id"]) if r["use_date"].startswith("2024")]
    assert len(new) == 6


async def test_a_file_of_another_issuer_is_refused_by_name(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    before = len(await renkei.statements(account["id"]))
    amex = write(AMEX, [Row("purchase", DAY, "アスクル", 1_000, BASIC, "YAMADA TARO")])

    answer = await upload(renkei, account["id"], amex)

    assert answer.status_code == 422, answer.text
    error = error_of(answer)
    assert error["code"] == "statement_file_invalid"
    assert error["details"]["code"] == "statement_file_wrong_issuer"
    assert (error["details"]["found"], error["details"]["line"]) == ("amex", 1)
    assert len(await renkei.statements(account["id"])) == before


async def test_a_broken_row_refuses_the_whole_file_with_its_line(renkei: Renkei) -> None:
    account = await renkei.account(SHOP, JCB_GOLD)
    before = len(await renkei.statements(account["id"]))
    rows = [Row("purchase", DAY + dt.timedelta(days=n), "お店", 500, "本人") for n in range(3)]
    written = write_with_lines(JCB, rows)
    broken = written.data.replace(b"2024/03/02", b"2024/02/30")

    answer = await upload(renkei, account["id"], broken)

    assert answer.status_code == 422, answer.text
    assert error_of(answer)["details"]["line"] == written.lines[1]
    assert len(await renkei.statements(account["id"])) == before  # nothing half-imported


async def test_the_new_cards_file_for_the_old_card_is_refused_not_doubled(renkei: Renkei) -> None:
    # R7 (a): after a card change the old card's file is uploaded for the old card. The
    # new card's file is not the old card's: its rows are already in the account.
    account = await renkei.account(CONSULTING, JCB_UPGRADED)
    changed = [e for e in await renkei.events(account["id"]) if e["type"] == "card.changed"]
    old_id = changed[0]["payload"]["old_card_id"]
    before = await renkei.statements(account["id"])
    new_file = await download(renkei, "jcb", "user_upgrade", "jcb-plat-5002")

    answer = await upload(renkei, account["id"], new_file, card_id=old_id)

    assert answer.status_code == 409, answer.text
    error = error_of(answer)
    assert error["code"] == "card_mismatch"
    confirmed = [r for r in before if r["status"] == "confirmed"]
    assert error["details"]["reason"] == "rows_of_another_card"
    assert error["details"]["card"] == account["card"]["masked_number"]
    assert error["details"]["rows"] == len(confirmed)
    assert error["details"]["line"] == 5  # the first row, below the summary and header
    assert len(await renkei.statements(account["id"])) == len(before)
    # The old card's own file goes in once.
    old_file = await download(renkei, "jcb", "user_upgrade", "jcb-general-5001")
    taken = await upload(renkei, account["id"], old_file, card_id=old_id)
    assert taken.status_code == 200, taken.text
    rows = await renkei.statements(account["id"])
    assert len(rows) == len(before) + taken.json()["added"] and taken.json()["added"] > 0
    assert max(natural_keys(rows).values()) == 1
    # Whichever came first: the legacy fetch of the old card finds every line already here.
    resync = await renkei.api.post(
        f"/accounts/{account['id']}/card-change/resync-old-card",
        json={"login_id": "user_upgrade", "password": "pass_good"},
    )
    assert resync.status_code == 200, resync.text
    assert resync.json()["added"] == 0
    assert resync.json()["duplicates"] == taken.json()["added"]
    assert len(await renkei.statements(account["id"])) == len(rows)
